package io.hybridrank.es;

import io.hybridrank.es.analysis.HybridRankAnalysis;
import io.hybridrank.es.root.RestRootInfoAction;
import io.hybridrank.es.root.RootInfoAction;
import io.hybridrank.es.root.TransportRootInfoAction;
import io.hybridrank.es.script.HybridRankScriptEngine;

import org.apache.lucene.analysis.Analyzer;
import org.elasticsearch.cluster.metadata.IndexNameExpressionResolver;
import org.elasticsearch.cluster.node.DiscoveryNodes;
import org.elasticsearch.common.io.stream.NamedWriteableRegistry;
import org.elasticsearch.common.settings.ClusterSettings;
import org.elasticsearch.common.settings.IndexScopedSettings;
import org.elasticsearch.common.settings.Setting;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.settings.SettingsFilter;
import org.elasticsearch.core.RestApiVersion;
import org.elasticsearch.features.NodeFeature;
import org.elasticsearch.index.analysis.AnalyzerProvider;
import org.elasticsearch.index.analysis.PreBuiltAnalyzerProviderFactory;
import org.elasticsearch.index.analysis.PreConfiguredTokenFilter;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.logging.LogManager;
import org.elasticsearch.logging.Logger;
import org.elasticsearch.plugins.ActionPlugin;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.ScriptPlugin;
import org.elasticsearch.rest.RestController;
import org.elasticsearch.rest.RestHandler;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.script.ScriptContext;
import org.elasticsearch.script.ScriptEngine;

import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;
import java.util.function.Supplier;

/**
 * hybridrank's plugin for nodes that lack some stock modules (the integ-test-zip distribution):
 * <ol>
 *   <li>{@code GET /} and {@code HEAD /} as the {@code rest-root} module answers them;</li>
 *   <li>script engine {@code hybridrank} with the native score script {@code vector_similarity};</li>
 *   <li>English stemming token filters and the {@code hybridrank_english} analyzer, from lucene-analysis-common.</li>
 * </ol>
 * It needs no entitlements: it reads no files of its own, opens no sockets, starts no threads.
 */
public class HybridRankPlugin extends Plugin implements ActionPlugin, ScriptPlugin, AnalysisPlugin {

    private static final Logger logger = LogManager.getLogger(HybridRankPlugin.class);

    /**
     * Whether this plugin serves {@code GET /}: {@code auto} (default) serves it unless another handler already
     * does (a stock node's rest-root module, which registers first); {@code true} always (the node fails to start
     * if rest-root is there too); {@code false} never.
     */
    public static final Setting<String> REST_ROOT_SETTING = Setting.simpleString(
        "hybridrank.rest_root",
        "auto",
        value -> {
            if (Set.of("auto", "true", "false").contains(value.toLowerCase(Locale.ROOT)) == false) {
                throw new IllegalArgumentException("[hybridrank.rest_root] must be one of [auto, true, false], got [" + value + "]");
            }
        },
        Setting.Property.NodeScope
    );

    @Override
    public List<Setting<?>> getSettings() {
        return List.of(REST_ROOT_SETTING);
    }

    // ---------------------------------------------------------------------------------------- root endpoint

    @Override
    public Collection<ActionHandler> getActions() {
        return List.of(new ActionHandler(RootInfoAction.INSTANCE, TransportRootInfoAction.class));
    }

    @Override
    public Collection<RestHandler> getRestHandlers(
        Settings settings,
        NamedWriteableRegistry namedWriteableRegistry,
        RestController restController,
        ClusterSettings clusterSettings,
        IndexScopedSettings indexScopedSettings,
        SettingsFilter settingsFilter,
        IndexNameExpressionResolver indexNameExpressionResolver,
        Supplier<DiscoveryNodes> nodesInCluster,
        Predicate<NodeFeature> clusterSupportsFeature
    ) {
        String mode = REST_ROOT_SETTING.get(settings).toLowerCase(Locale.ROOT);
        if (mode.equals("false")) {
            logger.info("hybridrank: GET / not served (hybridrank.rest_root: false)");
            return List.of();
        }
        if (mode.equals("auto")
            && restController.checkSupported(RestRequest.Method.GET, "/", Set.of(), Set.of(), RestApiVersion.current())) {
            logger.info("hybridrank: GET / is already served (rest-root module present); not registering ours");
            return List.of();
        }
        return List.of(new RestRootInfoAction());
    }

    // ------------------------------------------------------------------------------------------- scripting

    @Override
    public ScriptEngine getScriptEngine(Settings settings, Collection<ScriptContext<?>> contexts) {
        return new HybridRankScriptEngine();
    }

    // -------------------------------------------------------------------------------------------- analysis

    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        return HybridRankAnalysis.tokenFilters();
    }

    @Override
    public List<PreConfiguredTokenFilter> getPreConfiguredTokenFilters() {
        return HybridRankAnalysis.preConfiguredTokenFilters();
    }

    @Override
    public Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> getAnalyzers() {
        return HybridRankAnalysis.analyzers();
    }

    @Override
    public List<PreBuiltAnalyzerProviderFactory> getPreBuiltAnalyzerProviderFactories() {
        return HybridRankAnalysis.preBuiltAnalyzers();
    }
}
