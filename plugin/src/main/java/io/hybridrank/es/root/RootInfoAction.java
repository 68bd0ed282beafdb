package io.hybridrank.es.root;

import org.elasticsearch.action.ActionType;

/**
 * The transport action behind {@code GET /}. Its name differs from rest-root's {@code cluster:monitor/main}
 * so that the plugin can be installed on a stock node too (two registrations of one action name stop the
 * node), while staying under {@code cluster:monitor/}: the {@code monitor} cluster privilege covers it.
 */
public final class RootInfoAction {

    public static final String NAME = "cluster:monitor/hybridrank/main";
    public static final ActionType<RootInfoResponse> INSTANCE = new ActionType<>(NAME);

    private RootInfoAction() {}
}
