package io.hybridrank.es.analysis;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.en.EnglishMinimalStemFilter;
import org.apache.lucene.analysis.en.EnglishPossessiveFilter;
import org.apache.lucene.analysis.en.KStemFilter;
import org.apache.lucene.analysis.en.PorterStemFilter;
import org.apache.lucene.analysis.miscellaneous.EmptyTokenStream;
import org.apache.lucene.analysis.snowball.SnowballFilter;
import org.tartarus.snowball.ext.EnglishStemmer;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * The English stemming filters of lucene-analysis-common, under names that cannot clash with
 * analysis-common's on a stock node (all start with {@value #PREFIX}). Each mirrors one of analysis-common:
 *
 * <pre>
 *   hybridrank_porter_stem          = porter_stem          (= stemmer "english"; what the english analyzer uses)
 *   hybridrank_kstem                = kstem                (= stemmer "light_english")
 *   hybridrank_snowball             = snowball             (language, default English = Porter2)
 *   hybridrank_english_possessive   = stemmer "possessive_english"  (drops a trailing 's)
 *   hybridrank_english_minimal_stem = stemmer "minimal_english"     (plurals only)
 *   hybridrank_stemmer              = stemmer, English languages only
 *   hybridrank_keyword_marker       = keyword_marker       (protects words from the stemmers)
 * </pre>
 */
public final class EnglishFilters {

    public static final String PREFIX = "hybridrank_";
    public static final String PORTER_STEM = PREFIX + "porter_stem";
    public static final String KSTEM = PREFIX + "kstem";
    public static final String SNOWBALL = PREFIX + "snowball";
    public static final String ENGLISH_POSSESSIVE = PREFIX + "english_possessive";
    public static final String ENGLISH_MINIMAL_STEM = PREFIX + "english_minimal_stem";
    public static final String STEMMER = PREFIX + "stemmer";
    public static final String KEYWORD_MARKER = PREFIX + "keyword_marker";
    public static final String ENGLISH_ANALYZER = PREFIX + "english";

    /** The filters that need no settings, by name: usable directly in an analyzer's {@code filter} list. */
    public static Map<String, UnaryOperator<TokenStream>> preConfigured() {
        Map<String, UnaryOperator<TokenStream>> filters = new LinkedHashMap<>();
        filters.put(PORTER_STEM, PorterStemFilter::new);
        filters.put(KSTEM, KStemFilter::new);
        filters.put(SNOWBALL, in -> new SnowballFilter(in, new EnglishStemmer()));
        filters.put(ENGLISH_POSSESSIVE, EnglishPossessiveFilter::new);
        filters.put(ENGLISH_MINIMAL_STEM, EnglishMinimalStemFilter::new);
        return filters;
    }

    /** The {@code language} values of {@value #STEMMER}, as analysis-common's {@code stemmer} names them. */
    public static UnaryOperator<TokenStream> stemmer(String language) {
        return switch (language.trim().toLowerCase(Locale.ROOT)) {
            case "english", "porter" -> PorterStemFilter::new;
            case "light_english", "lightenglish", "kstem" -> KStemFilter::new;
            case "minimal_english", "minimalenglish" -> EnglishMinimalStemFilter::new;
            case "possessive_english", "possessiveenglish" -> EnglishPossessiveFilter::new;
            case "porter2" -> in -> new SnowballFilter(in, new EnglishStemmer());
            default -> throw new IllegalArgumentException(
                "[" + STEMMER + "] language [" + language + "] is not supported; use one of "
                    + "[english, light_english, minimal_english, possessive_english, porter2]"
            );
        };
    }

    /**
     * A Snowball stemmer by language name, as analysis-common's {@code snowball} takes it ("English", "Porter",
     * "German", ...): checked now, so a bad name fails the index creation rather than the first document.
     */
    public static UnaryOperator<TokenStream> snowball(String language) {
        String name = capitalize(language.trim());
        try (SnowballFilter probe = new SnowballFilter(new EmptyTokenStream(), name)) {
            assert probe != null;
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("[" + SNOWBALL + "] unknown language [" + language + "]", e);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return in -> new SnowballFilter(in, name);
    }

    static String capitalize(String s) {
        if (s.isEmpty()) {
            return s;
        }
        return s.substring(0, 1).toUpperCase(Locale.ROOT) + s.substring(1);
    }

    private EnglishFilters() {}
}
