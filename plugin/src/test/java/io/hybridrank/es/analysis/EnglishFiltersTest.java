package io.hybridrank.es.analysis;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.LowerCaseFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.en.EnglishAnalyzer;
import org.apache.lucene.analysis.standard.StandardTokenizer;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class EnglishFiltersTest {

    private static final String TEXT = "running foxes' jumped";

    private static List<String> tokens(Analyzer analyzer, String text) throws IOException {
        List<String> out = new ArrayList<>();
        try (TokenStream ts = analyzer.tokenStream("f", text)) {
            CharTermAttribute term = ts.addAttribute(CharTermAttribute.class);
            ts.reset();
            while (ts.incrementToken()) {
                out.add(term.toString());
            }
            ts.end();
        }
        return out;
    }

    /** standard tokenizer, english possessive, lowercase, then {@code stemmer}. */
    private static List<String> chain(UnaryOperator<TokenStream> stemmer, String text) throws IOException {
        UnaryOperator<TokenStream> possessive = EnglishFilters.preConfigured().get(EnglishFilters.ENGLISH_POSSESSIVE);
        try (Analyzer analyzer = new Analyzer() {
            @Override
            protected TokenStreamComponents createComponents(String fieldName) {
                Tokenizer source = new StandardTokenizer();
                return new TokenStreamComponents(source, stemmer.apply(new LowerCaseFilter(possessive.apply(source))));
            }
        }) {
            return tokens(analyzer, text);
        }
    }

    @Test
    void preConfiguredFiltersStem() throws IOException {
        var filters = EnglishFilters.preConfigured();
        assertEquals(List.of("run", "fox", "jump"), chain(filters.get(EnglishFilters.PORTER_STEM), TEXT));
        assertEquals(List.of("run", "fox", "jump"), chain(filters.get(EnglishFilters.SNOWBALL), TEXT));
        // KStem is dictionary-based: "running" is a word of its lexicon and stays
        assertEquals(List.of("running", "fox", "jump"), chain(filters.get(EnglishFilters.KSTEM), TEXT));
        assertEquals(List.of("running", "foxe", "jumped"), chain(filters.get(EnglishFilters.ENGLISH_MINIMAL_STEM), TEXT));
        assertEquals(List.of("the", "fox", "den"), chain(UnaryOperator.identity(), "The fox's den"));
    }

    @Test
    void everyNameIsPrefixed() {
        for (String name : EnglishFilters.preConfigured().keySet()) {
            assertTrue(name.startsWith(EnglishFilters.PREFIX), name);
        }
        for (String name : HybridRankAnalysis.tokenFilters().keySet()) {
            assertTrue(name.startsWith(EnglishFilters.PREFIX), name);
        }
        for (String name : HybridRankAnalysis.analyzers().keySet()) {
            assertTrue(name.startsWith(EnglishFilters.PREFIX), name);
        }
    }

    @Test
    void stemmerLanguages() throws IOException {
        assertEquals(List.of("run", "fox", "jump"), chain(EnglishFilters.stemmer("english"), TEXT));
        assertEquals(List.of("running", "fox", "jump"), chain(EnglishFilters.stemmer("light_english"), TEXT));
        assertEquals(List.of("run", "fox", "jump"), chain(EnglishFilters.stemmer("porter2"), TEXT));
        assertEquals(List.of("running", "foxe", "jumped"), chain(EnglishFilters.stemmer("minimal_english"), TEXT));
        assertThrows(IllegalArgumentException.class, () -> EnglishFilters.stemmer("klingon"));
    }

    @Test
    void snowballLanguagesAreCheckedUpFront() throws IOException {
        assertEquals(List.of("generous", "organ"), chain(EnglishFilters.snowball("english"), "generously organized"));
        assertEquals(List.of("generous", "organ"), chain(EnglishFilters.snowball("English"), "generously organized"));
        assertEquals(List.of("gener", "organ"), chain(EnglishFilters.snowball("Porter"), "generously organized"));
        assertThrows(IllegalArgumentException.class, () -> EnglishFilters.snowball("Klingon"));
    }

    @Test
    void englishAnalyzerIsLucenes() throws IOException {
        try (EnglishAnalyzer analyzer = new EnglishAnalyzer()) {
            assertEquals(List.of("fox", "run", "jump"), tokens(analyzer, "The fox's running jumps"));
        }
    }
}
