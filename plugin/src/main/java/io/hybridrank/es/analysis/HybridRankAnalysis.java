package io.hybridrank.es.analysis;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.en.EnglishAnalyzer;
import org.elasticsearch.index.analysis.AnalyzerProvider;
import org.elasticsearch.index.analysis.PreBuiltAnalyzerProviderFactory;
import org.elasticsearch.index.analysis.PreConfiguredTokenFilter;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.indices.analysis.PreBuiltCacheFactory.CachingStrategy;
import org.elasticsearch.plugins.AnalysisPlugin;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * What the plugin adds to analysis. Every filter without settings is registered twice, as analysis-common does:
 * as a type ({@code "type": "hybridrank_kstem"} in an index's {@code analysis.filter}) and pre-configured (the bare
 * name in an analyzer's {@code filter} list, or in {@code _analyze} without an index).
 */
public final class HybridRankAnalysis {

    public static Map<String, AnalysisProvider<TokenFilterFactory>> tokenFilters() {
        Map<String, AnalysisProvider<TokenFilterFactory>> filters = new LinkedHashMap<>();
        for (Map.Entry<String, UnaryOperator<TokenStream>> e : EnglishFilters.preConfigured().entrySet()) {
            UnaryOperator<TokenStream> filter = e.getValue();
            filters.put(e.getKey(), (indexSettings, env, name, settings) -> new FunctionTokenFilterFactory(name, filter));
        }
        // configurable: the Snowball language (default English, i.e. Porter2) and the stemmer's language
        filters.put(
            EnglishFilters.SNOWBALL,
            (indexSettings, env, name, settings) -> new FunctionTokenFilterFactory(
                name,
                EnglishFilters.snowball(settings.get("language", settings.get("name", "English")))
            )
        );
        filters.put(
            EnglishFilters.STEMMER,
            (indexSettings, env, name, settings) -> new FunctionTokenFilterFactory(
                name,
                EnglishFilters.stemmer(settings.get("language", settings.get("name", "english")))
            )
        );
        filters.put(
            EnglishFilters.KEYWORD_MARKER,
            AnalysisPlugin.requiresAnalysisSettings(
                (indexSettings, env, name, settings) -> new KeywordMarkerTokenFilterFactory(env, name, settings)
            )
        );
        return filters;
    }

    public static List<PreConfiguredTokenFilter> preConfiguredTokenFilters() {
        List<PreConfiguredTokenFilter> filters = new ArrayList<>();
        for (Map.Entry<String, UnaryOperator<TokenStream>> e : EnglishFilters.preConfigured().entrySet()) {
            // stemmers must not apply to multi-term queries (prefix, wildcard, fuzzy): useFilterForMultitermQueries=false
            filters.add(PreConfiguredTokenFilter.singleton(e.getKey(), false, e.getValue()));
        }
        return filters;
    }

    public static Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> analyzers() {
        Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> analyzers = new LinkedHashMap<>();
        analyzers.put(EnglishFilters.ENGLISH_ANALYZER, (indexSettings, env, name, settings) -> new EnglishAnalyzerProvider(env, name, settings));
        return analyzers;
    }

    public static List<PreBuiltAnalyzerProviderFactory> preBuiltAnalyzers() {
        return List.of(new PreBuiltAnalyzerProviderFactory(EnglishFilters.ENGLISH_ANALYZER, CachingStrategy.ONE, EnglishAnalyzer::new));
    }

    private HybridRankAnalysis() {}
}
