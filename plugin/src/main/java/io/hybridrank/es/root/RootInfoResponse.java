package io.hybridrank.es.root;

import org.elasticsearch.Build;
import org.elasticsearch.action.ActionResponse;
import org.elasticsearch.action.support.TransportAction;
import org.elasticsearch.cluster.ClusterName;
import org.elasticsearch.common.io.stream.StreamOutput;
import org.elasticsearch.xcontent.ToXContentObject;
import org.elasticsearch.xcontent.XContentBuilder;

import java.io.IOException;

/**
 * What {@code GET /} answers. The body has exactly the fields, order and values of a stock node's
 * {@code rest-root} module, because the official clients parse it ({@code info()}) and check
 * {@code version.number} / {@code build_flavor} before they trust the cluster.
 */
public final class RootInfoResponse extends ActionResponse implements ToXContentObject {

    static final String TAGLINE = "You Know, for Search";

    private final String nodeName;
    private final String luceneVersion;
    private final ClusterName clusterName;
    private final String clusterUuid;
    private final Build build;

    public RootInfoResponse(String nodeName, String luceneVersion, ClusterName clusterName, String clusterUuid, Build build) {
        this.nodeName = nodeName;
        this.luceneVersion = luceneVersion;
        this.clusterName = clusterName;
        this.clusterUuid = clusterUuid;
        this.build = build;
    }

    public String nodeName() {
        return nodeName;
    }

    public String clusterUuid() {
        return clusterUuid;
    }

    @Override
    public void writeTo(StreamOutput out) {
        TransportAction.localOnly();
    }

    @Override
    public XContentBuilder toXContent(XContentBuilder builder, Params params) throws IOException {
        builder.startObject();
        builder.field("name", nodeName);
        builder.field("cluster_name", clusterName.value());
        builder.field("cluster_uuid", clusterUuid);
        builder.startObject("version");
        builder.field("number", build.qualifiedVersion());
        builder.field("build_flavor", build.flavor());
        builder.field("build_type", build.type().displayName());
        builder.field("build_hash", build.hash());
        builder.field("build_date", build.date());
        builder.field("build_snapshot", build.isSnapshot());
        builder.field("lucene_version", luceneVersion);
        builder.field("minimum_wire_compatibility_version", build.minWireCompatVersion());
        builder.field("minimum_index_compatibility_version", build.minIndexCompatVersion());
        builder.endObject();
        builder.field("tagline", TAGLINE);
        builder.endObject();
        return builder;
    }
}
