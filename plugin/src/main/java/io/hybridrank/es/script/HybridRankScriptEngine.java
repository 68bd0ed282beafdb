package io.hybridrank.es.script;

import org.elasticsearch.script.ScoreScript;
import org.elasticsearch.script.ScriptContext;
import org.elasticsearch.script.ScriptEngine;

import java.util.Map;
import java.util.Set;

/**
 * Script engine {@code "lang": "hybridrank"}. Scripts are native: the script {@code source} names one,
 * there is nothing to compile. Only the score context ({@code script_score} queries,
 * {@code function_score} {@code script_score} functions) is supported.
 *
 * <ul>
 *   <li>{@code vector_similarity}: see {@link VectorSimilarityScript}.</li>
 * </ul>
 */
public final class HybridRankScriptEngine implements ScriptEngine {

    public static final String LANG = "hybridrank";

    @Override
    public String getType() {
        return LANG;
    }

    @Override
    public <T> T compile(String name, String source, ScriptContext<T> context, Map<String, String> options) {
        if (context.equals(ScoreScript.CONTEXT) == false) {
            throw new IllegalArgumentException(
                "[" + LANG + "] scripts can only be used for scoring (script_score), not in context [" + context.name + "]"
            );
        }
        String id = source == null ? "" : source.trim();
        if (VectorSimilarityScript.SOURCE.equals(id)) {
            return context.factoryClazz.cast(new VectorSimilarityScript.Factory());
        }
        throw new IllegalArgumentException(
            "unknown [" + LANG + "] script [" + source + "]; available: [" + VectorSimilarityScript.SOURCE + "]"
        );
    }

    @Override
    public Set<ScriptContext<?>> getSupportedContexts() {
        return Set.of(ScoreScript.CONTEXT);
    }
}
