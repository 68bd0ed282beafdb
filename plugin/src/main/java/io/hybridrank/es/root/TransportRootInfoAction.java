package io.hybridrank.es.root;

import org.elasticsearch.Build;
import org.elasticsearch.action.ActionListener;
import org.elasticsearch.action.support.ActionFilters;
import org.elasticsearch.action.support.TransportAction;
import org.elasticsearch.cluster.ClusterState;
import org.elasticsearch.cluster.metadata.Metadata;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.util.concurrent.EsExecutors;
import org.elasticsearch.index.IndexVersion;
import org.elasticsearch.injection.guice.Inject;
import org.elasticsearch.node.Node;
import org.elasticsearch.tasks.Task;
import org.elasticsearch.transport.TransportService;

/**
 * Answers {@link RootInfoAction} from the local cluster state, on the calling thread (it only reads).
 * Going through a transport action rather than answering in the REST handler keeps it authorised like
 * the stock endpoint when security is on: the action name sits under {@code cluster:monitor/}.
 */
public final class TransportRootInfoAction extends TransportAction<RootInfoRequest, RootInfoResponse> {

    private final String nodeName;
    private final ClusterService clusterService;

    @Inject
    public TransportRootInfoAction(
        Settings settings,
        TransportService transportService,
        ActionFilters actionFilters,
        ClusterService clusterService
    ) {
        super(RootInfoAction.NAME, actionFilters, transportService.getTaskManager(), EsExecutors.DIRECT_EXECUTOR_SERVICE);
        this.nodeName = Node.NODE_NAME_SETTING.get(settings);
        this.clusterService = clusterService;
    }

    @Override
    protected void doExecute(Task task, RootInfoRequest request, ActionListener<RootInfoResponse> listener) {
        ClusterState state = clusterService.state();
        Metadata metadata = state.metadata();
        // Like rest-root: the UUID only once the cluster has committed it, "_na_" before.
        String clusterUuid = metadata.clusterUUIDCommitted() ? metadata.clusterUUID() : Metadata.UNKNOWN_CLUSTER_UUID;
        listener.onResponse(
            new RootInfoResponse(
                nodeName,
                IndexVersion.current().luceneVersion().toString(),
                state.getClusterName(),
                clusterUuid,
                Build.current()
            )
        );
    }
}
