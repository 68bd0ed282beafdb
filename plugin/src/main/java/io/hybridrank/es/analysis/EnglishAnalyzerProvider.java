package io.hybridrank.es.analysis;

import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.en.EnglishAnalyzer;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.analysis.AbstractIndexAnalyzerProvider;
import org.elasticsearch.index.analysis.Analysis;

/**
 * {@code hybridrank_english}: Lucene's {@link EnglishAnalyzer}, which is what a stock node's {@code english}
 * analyzer is (standard tokenizer, English possessive, lowercase, English stop words, keyword marker for
 * {@code stem_exclusion}, Porter stemmer). Settings as for {@code english}: {@code stopwords}
 * (default {@code _english_}), {@code stopwords_path}, {@code stem_exclusion}.
 */
final class EnglishAnalyzerProvider extends AbstractIndexAnalyzerProvider<EnglishAnalyzer> {

    private final EnglishAnalyzer analyzer;

    EnglishAnalyzerProvider(Environment env, String name, Settings settings) {
        super(name);
        CharArraySet stopWords = Analysis.parseStopWords(env, settings, EnglishAnalyzer.getDefaultStopSet());
        CharArraySet stemExclusion = Analysis.parseStemExclusion(settings, CharArraySet.EMPTY_SET);
        this.analyzer = new EnglishAnalyzer(stopWords, stemExclusion);
    }

    @Override
    public EnglishAnalyzer get() {
        return analyzer;
    }
}
