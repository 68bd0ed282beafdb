package io.hybridrank.es.script;

import java.util.Locale;

/**
 * The similarities a {@code dense_vector} field can be mapped with, each turned into a score exactly as
 * Elasticsearch turns it into a kNN {@code _score} (so a {@code script_score} and a {@code knn} search over
 * the same vector rank and score alike). With {@code q} the query vector, {@code d} the document's vector
 * and {@code n} the number of dimensions:
 *
 * <pre>
 *   l2_norm            1 / (1 + |q - d|^2)
 *   cosine             (1 + cos(q, d)) / 2
 *   dot_product        float vectors: (1 + q.d) / 2, floored at 0     byte vectors: 0.5 + q.d / (32768 n)
 *   max_inner_product  q.d &lt; 0 ? 1 / (1 - q.d) : q.d + 1
 * </pre>
 *
 * All are non-negative, as {@code script_score} requires. Sums are taken in double precision; Lucene's
 * kNN scoring sums in float (SIMD), so the two agree to about 1e-6 relative, not bit for bit.
 */
public enum VectorSimilarity {
    L2_NORM {
        @Override
        public double score(float[] q, float[] d, boolean byteElements) {
            double sum = 0;
            for (int i = 0; i < q.length; i++) {
                double diff = (double) q[i] - d[i];
                sum += diff * diff;
            }
            return 1.0 / (1.0 + sum);
        }
    },
    COSINE {
        @Override
        public double score(float[] q, float[] d, boolean byteElements) {
            double dot = 0, qq = 0, dd = 0;
            for (int i = 0; i < q.length; i++) {
                dot += (double) q[i] * d[i];
                qq += (double) q[i] * q[i];
                dd += (double) d[i] * d[i];
            }
            if (qq == 0 || dd == 0) {
                // Elasticsearch rejects zero vectors for cosine at index and query time; score them as orthogonal.
                return 0.5;
            }
            double cos = dot / (Math.sqrt(qq) * Math.sqrt(dd));
            return Math.max((1.0 + cos) / 2.0, 0.0);
        }
    },
    DOT_PRODUCT {
        @Override
        public double score(float[] q, float[] d, boolean byteElements) {
            double dot = dot(q, d);
            if (byteElements) {
                return 0.5 + dot / (32768.0 * q.length);
            }
            return Math.max((1.0 + dot) / 2.0, 0.0);
        }
    },
    MAX_INNER_PRODUCT {
        @Override
        public double score(float[] q, float[] d, boolean byteElements) {
            double dot = dot(q, d);
            return dot < 0 ? 1.0 / (1.0 - dot) : dot + 1.0;
        }
    };

    /** The score of document vector {@code d} for query vector {@code q} (same length); {@code byteElements} for {@code element_type: byte}. */
    public abstract double score(float[] q, float[] d, boolean byteElements);

    /** The name used in mappings and in the script's {@code similarity} parameter, e.g. {@code dot_product}. */
    public String paramName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Parses a mapping/parameter name ({@code cosine}, {@code dot_product}, {@code l2_norm}, {@code max_inner_product}). */
    public static VectorSimilarity fromParam(String value) {
        for (VectorSimilarity s : values()) {
            if (s.paramName().equals(value.trim().toLowerCase(Locale.ROOT))) {
                return s;
            }
        }
        throw new IllegalArgumentException(
            "[similarity] must be one of [cosine, dot_product, l2_norm, max_inner_product], got [" + value + "]"
        );
    }

    private static double dot(float[] q, float[] d) {
        double sum = 0;
        for (int i = 0; i < q.length; i++) {
            sum += (double) q[i] * d[i];
        }
        return sum;
    }
}
