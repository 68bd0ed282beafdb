package io.hybridrank.es.analysis;

import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.miscellaneous.SetKeywordMarkerFilter;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.Analysis;

/**
 * {@code hybridrank_keyword_marker}: marks the listed words as keywords so that the stemmers after it leave
 * them alone (analysis-common's {@code keyword_marker}, list form). Settings: {@code keywords} (array) or
 * {@code keywords_path} (a file under the node's config directory, one word per line), {@code ignore_case}.
 */
final class KeywordMarkerTokenFilterFactory extends AbstractTokenFilterFactory {

    private final CharArraySet keywords;

    KeywordMarkerTokenFilterFactory(Environment env, String name, Settings settings) {
        super(name);
        boolean ignoreCase = settings.getAsBoolean("ignore_case", false);
        CharArraySet words = Analysis.getWordSet(env, settings, "keywords");
        if (words == null) {
            throw new IllegalArgumentException("[" + EnglishFilters.KEYWORD_MARKER + "] requires [keywords] or [keywords_path]");
        }
        this.keywords = new CharArraySet(words, ignoreCase);
    }

    @Override
    public TokenStream create(TokenStream tokenStream) {
        return new SetKeywordMarkerFilter(tokenStream, keywords);
    }
}
