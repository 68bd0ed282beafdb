package io.hybridrank.es.root;

import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.rest.BaseRestHandler;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.rest.action.RestBuilderListener;
import org.elasticsearch.xcontent.XContentBuilder;

import java.util.List;

import static org.elasticsearch.rest.RestRequest.Method.GET;
import static org.elasticsearch.rest.RestRequest.Method.HEAD;

/**
 * {@code GET /} and {@code HEAD /}, as the stock rest-root module serves them: 200 with the node/cluster/
 * version document (pretty-printed unless {@code ?pretty} is given), and for HEAD the same status and
 * headers without a body, which is what the clients' {@code ping()} checks.
 */
public final class RestRootInfoAction extends BaseRestHandler {

    @Override
    public List<Route> routes() {
        return List.of(new Route(GET, "/"), new Route(HEAD, "/"));
    }

    @Override
    public String getName() {
        return "hybridrank_main_action";
    }

    @Override
    protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client) {
        return channel -> client.execute(RootInfoAction.INSTANCE, new RootInfoRequest(), new RestBuilderListener<>(channel) {
            @Override
            public RestResponse buildResponse(RootInfoResponse response, XContentBuilder builder) throws Exception {
                if (request.hasParam("pretty") == false) {
                    builder.prettyPrint().lfAtEnd();
                }
                response.toXContent(builder, request);
                return new RestResponse(RestStatus.OK, builder);
            }
        });
    }

    @Override
    public boolean canTripCircuitBreaker() {
        return false;
    }
}
