package io.hybridrank.es.script;

import org.elasticsearch.index.mapper.MappedFieldType;
import org.elasticsearch.index.mapper.vectors.DenseVectorFieldMapper;
import org.elasticsearch.index.mapper.vectors.DenseVectorFieldMapper.DenseVectorFieldType;
import org.elasticsearch.index.mapper.vectors.DenseVectorFieldMapper.ElementType;
import org.elasticsearch.script.DocReader;
import org.elasticsearch.script.ScoreScript;
import org.elasticsearch.script.field.Field;
import org.elasticsearch.script.field.vectors.DenseVectorDocValuesField;
import org.elasticsearch.search.lookup.SearchLookup;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code vector_similarity}: scores a document by the similarity between a query vector and the document's
 * {@code dense_vector} field, with the same formula Elasticsearch uses for a kNN hit's {@code _score} (see
 * {@link VectorSimilarity}).
 *
 * <pre>
 * "script_score": {
 *   "query": {"match_all": {}},
 *   "script": {
 *     "lang": "hybridrank", "source": "vector_similarity",
 *     "params": {"field": "embedding", "query_vector": [0.1, 0.2, 0.3, 0.4], "similarity": "cosine"}
 *   }
 * }
 * </pre>
 *
 * Parameters:
 * <ul>
 *   <li>{@code field} (required): a {@code dense_vector} field ({@code element_type} float or byte).</li>
 *   <li>{@code query_vector} (required): numbers, as many as the field's {@code dims}; for byte fields, integers in [-128, 127].</li>
 *   <li>{@code similarity}: {@code cosine}, {@code dot_product}, {@code l2_norm} or {@code max_inner_product};
 *       defaults to the similarity the field is mapped with (required when the mapping has none, i.e. {@code index: false}).</li>
 *   <li>{@code missing_score} (default 0): the score of a document without a value in {@code field}, and of every document
 *       of an index where {@code field} is not mapped. Such documents still match: to drop them, filter the inner query with
 *       {@code exists} on the field, or set {@code min_score} above {@code missing_score}.</li>
 * </ul>
 * A field mapped as something other than {@code dense_vector}, or a query vector of the wrong length, fails the request
 * with a 400 naming the problem.
 */
public final class VectorSimilarityScript {

    public static final String SOURCE = "vector_similarity";

    private VectorSimilarityScript() {}

    /** The compiled form: stateless, deterministic, so results are cacheable. */
    static final class Factory implements ScoreScript.Factory {
        @Override
        public boolean isResultDeterministic() {
            return true;
        }

        @Override
        public ScoreScript.LeafFactory newFactory(Map<String, Object> params, SearchLookup lookup) {
            return new LeafFactory(params, lookup);
        }
    }

    /** Parameters parsed and checked once per shard and request, against that shard's mapping. */
    static final class LeafFactory implements ScoreScript.LeafFactory {
        private final Map<String, Object> params;
        private final SearchLookup lookup;
        private final String field;
        private final float[] queryVector;
        private final VectorSimilarity similarity;
        private final boolean byteElements;
        private final boolean mapped;
        private final double missingScore;

        LeafFactory(Map<String, Object> params, SearchLookup lookup) {
            this.params = params;
            this.lookup = lookup;
            this.field = requireString(params, "field");
            this.queryVector = parseVector(params.get("query_vector"));
            this.missingScore = parseMissingScore(params.get("missing_score"));

            MappedFieldType fieldType = lookup.fieldType(field);
            Object similarityParam = params.get("similarity");
            if (fieldType == null) {
                // Not mapped in this index (e.g. one of several searched indices): every document is "missing".
                this.mapped = false;
                this.byteElements = false;
                this.similarity = similarityParam == null ? VectorSimilarity.COSINE : VectorSimilarity.fromParam(similarityParam.toString());
                return;
            }
            if (!(fieldType instanceof DenseVectorFieldType vectorType)) {
                throw new IllegalArgumentException(
                    "[" + SOURCE + "] field [" + field + "] must be a [dense_vector] field, but it is mapped as [" + fieldType.typeName() + "]"
                );
            }
            this.mapped = true;
            ElementType elementType = vectorType.getElementType();
            if (elementType == ElementType.BIT) {
                throw new IllegalArgumentException(
                    "[" + SOURCE + "] field [" + field + "] has element_type [bit]; only [float] and [byte] vectors are supported"
                );
            }
            this.byteElements = elementType == ElementType.BYTE;
            int dims = vectorType.getVectorDimensions();
            if (queryVector.length != dims) {
                throw new IllegalArgumentException(
                    "[" + SOURCE + "] [query_vector] has " + queryVector.length + " dimensions but field [" + field + "] has " + dims
                );
            }
            if (byteElements) {
                checkByteRange(queryVector);
            }
            if (similarityParam != null) {
                this.similarity = VectorSimilarity.fromParam(similarityParam.toString());
            } else {
                DenseVectorFieldMapper.VectorSimilarity mappedSimilarity = vectorType.getSimilarity();
                if (mappedSimilarity == null) {
                    throw new IllegalArgumentException(
                        "[" + SOURCE + "] field [" + field + "] is mapped without a similarity; pass [similarity] "
                            + "(cosine, dot_product, l2_norm or max_inner_product)"
                    );
                }
                this.similarity = VectorSimilarity.fromParam(mappedSimilarity.toString());
            }
        }

        @Override
        public boolean needs_score() {
            return false;
        }

        @Override
        public boolean needs_termStats() {
            return false;
        }

        @Override
        public ScoreScript newInstance(DocReader reader) {
            return new ScoreScript(params, lookup, reader) {
                @Override
                public double execute(ExplanationHolder explanation) {
                    if (mapped == false) {
                        explain(explanation, "field [" + field + "] is not mapped in this index: missing_score");
                        return missingScore;
                    }
                    Field<?> value = field(field);
                    if (!(value instanceof DenseVectorDocValuesField vectorField) || vectorField.isEmpty()) {
                        explain(explanation, "document has no value in [" + field + "]: missing_score");
                        return missingScore;
                    }
                    float[] docVector = vectorField.get().getVector();
                    double score = similarity.score(queryVector, docVector, byteElements);
                    explain(explanation, similarity.paramName() + " similarity of [" + field + "] to the query vector, as a kNN _score");
                    return score;
                }
            };
        }

        private static void explain(ScoreScript.ExplanationHolder explanation, String text) {
            if (explanation != null) {
                explanation.set(SOURCE + ": " + text);
            }
        }
    }

    static String requireString(Map<String, Object> params, String name) {
        Object value = params.get(name);
        if (value == null) {
            throw new IllegalArgumentException("[" + SOURCE + "] missing required parameter [" + name + "]");
        }
        if ((value instanceof String) == false || ((String) value).isBlank()) {
            throw new IllegalArgumentException("[" + SOURCE + "] parameter [" + name + "] must be a non-empty string, got [" + value + "]");
        }
        return (String) value;
    }

    static float[] parseVector(Object value) {
        if (value == null) {
            throw new IllegalArgumentException("[" + SOURCE + "] missing required parameter [query_vector]");
        }
        if (!(value instanceof List<?> list) || list.isEmpty()) {
            throw new IllegalArgumentException("[" + SOURCE + "] [query_vector] must be a non-empty array of numbers, got [" + value + "]");
        }
        float[] vector = new float[list.size()];
        for (int i = 0; i < vector.length; i++) {
            Object element = list.get(i);
            if (!(element instanceof Number number)) {
                throw new IllegalArgumentException("[" + SOURCE + "] [query_vector] element " + i + " is not a number: [" + element + "]");
            }
            float f = number.floatValue();
            if (Float.isFinite(f) == false) {
                throw new IllegalArgumentException("[" + SOURCE + "] [query_vector] element " + i + " is not finite: [" + element + "]");
            }
            vector[i] = f;
        }
        return vector;
    }

    static double parseMissingScore(Object value) {
        if (value == null) {
            return 0.0;
        }
        if (!(value instanceof Number number) || Double.isFinite(number.doubleValue()) == false || number.doubleValue() < 0) {
            throw new IllegalArgumentException("[" + SOURCE + "] [missing_score] must be a finite number >= 0, got [" + value + "]");
        }
        return number.doubleValue();
    }

    static void checkByteRange(float[] vector) {
        for (int i = 0; i < vector.length; i++) {
            float f = vector[i];
            if (f != Math.rint(f) || f < Byte.MIN_VALUE || f > Byte.MAX_VALUE) {
                throw new IllegalArgumentException(
                    String.format(
                        Locale.ROOT,
                        "[%s] [query_vector] element %d is [%s]; a byte vector field needs integers in [-128, 127]",
                        SOURCE,
                        i,
                        f
                    )
                );
            }
        }
    }
}
