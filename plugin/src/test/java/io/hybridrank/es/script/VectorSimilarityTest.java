package io.hybridrank.es.script;

import org.apache.lucene.index.VectorSimilarityFunction;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The script's formulas must give what Lucene's kNN scoring gives (Elasticsearch's kNN _score is Lucene's). */
class VectorSimilarityTest {

    private static final double EPS = 1e-5;
    private final Random random = new Random(42);

    private float[] randomVector(int dims) {
        float[] v = new float[dims];
        for (int i = 0; i < dims; i++) {
            v[i] = (float) (random.nextGaussian());
        }
        return v;
    }

    private static float[] unit(float[] v) {
        double n = 0;
        for (float x : v) {
            n += x * x;
        }
        float[] u = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            u[i] = (float) (v[i] / Math.sqrt(n));
        }
        return u;
    }

    private byte[] randomBytes(int dims) {
        byte[] b = new byte[dims];
        random.nextBytes(b);
        return b;
    }

    private static float[] toFloats(byte[] b) {
        float[] f = new float[b.length];
        for (int i = 0; i < b.length; i++) {
            f[i] = b[i];
        }
        return f;
    }

    @Test
    void floatScoresMatchLucene() {
        for (int trial = 0; trial < 200; trial++) {
            int dims = 1 + random.nextInt(64);
            float[] q = randomVector(dims);
            float[] d = randomVector(dims);
            assertEquals(VectorSimilarityFunction.EUCLIDEAN.compare(q, d), VectorSimilarity.L2_NORM.score(q, d, false), EPS);
            assertEquals(VectorSimilarityFunction.COSINE.compare(q, d), VectorSimilarity.COSINE.score(q, d, false), EPS);
            assertEquals(
                VectorSimilarityFunction.MAXIMUM_INNER_PRODUCT.compare(q, d),
                VectorSimilarity.MAX_INNER_PRODUCT.score(q, d, false),
                EPS * Math.max(1, Math.abs(VectorSimilarityFunction.MAXIMUM_INNER_PRODUCT.compare(q, d)))
            );
            float[] qu = unit(q), du = unit(d);
            assertEquals(VectorSimilarityFunction.DOT_PRODUCT.compare(qu, du), VectorSimilarity.DOT_PRODUCT.score(qu, du, false), EPS);
        }
    }

    @Test
    void byteScoresMatchLucene() {
        for (int trial = 0; trial < 200; trial++) {
            int dims = 1 + random.nextInt(64);
            byte[] q = randomBytes(dims);
            byte[] d = randomBytes(dims);
            float[] qf = toFloats(q), df = toFloats(d);
            assertEquals(VectorSimilarityFunction.EUCLIDEAN.compare(q, d), VectorSimilarity.L2_NORM.score(qf, df, true), EPS);
            assertEquals(VectorSimilarityFunction.DOT_PRODUCT.compare(q, d), VectorSimilarity.DOT_PRODUCT.score(qf, df, true), EPS);
            assertEquals(VectorSimilarityFunction.COSINE.compare(q, d), VectorSimilarity.COSINE.score(qf, df, true), EPS);
        }
    }

    @Test
    void scoresAreNeverNegative() {
        float[] q = {1, 0};
        float[] opposite = {-1, 0};
        for (VectorSimilarity s : VectorSimilarity.values()) {
            assertTrue(s.score(q, opposite, false) >= 0, s + " must not be negative (script_score rejects it)");
        }
        assertEquals(0.0, VectorSimilarity.COSINE.score(q, opposite, false), 1e-12);
        assertEquals(0.5, VectorSimilarity.COSINE.score(q, new float[] { 0, 0 }, false), 1e-12);
    }

    @Test
    void parsesMappingNames() {
        assertEquals(VectorSimilarity.DOT_PRODUCT, VectorSimilarity.fromParam("dot_product"));
        assertEquals(VectorSimilarity.L2_NORM, VectorSimilarity.fromParam(" L2_NORM "));
        assertEquals(VectorSimilarity.MAX_INNER_PRODUCT, VectorSimilarity.fromParam("max_inner_product"));
        assertEquals("cosine", VectorSimilarity.COSINE.paramName());
        assertThrows(IllegalArgumentException.class, () -> VectorSimilarity.fromParam("hamming"));
    }

    @Test
    void validatesParameters() {
        assertEquals(3, VectorSimilarityScript.parseVector(List.of(1, 2.5, -3)).length);
        assertThrows(IllegalArgumentException.class, () -> VectorSimilarityScript.parseVector(null));
        assertThrows(IllegalArgumentException.class, () -> VectorSimilarityScript.parseVector(List.of()));
        assertThrows(IllegalArgumentException.class, () -> VectorSimilarityScript.parseVector(List.of(1, "x")));
        assertThrows(IllegalArgumentException.class, () -> VectorSimilarityScript.parseVector("1,2"));
        assertEquals(0.0, VectorSimilarityScript.parseMissingScore(null));
        assertEquals(0.25, VectorSimilarityScript.parseMissingScore(0.25));
        assertThrows(IllegalArgumentException.class, () -> VectorSimilarityScript.parseMissingScore(-1));
        VectorSimilarityScript.checkByteRange(new float[] { -128, 0, 127 });
        assertThrows(IllegalArgumentException.class, () -> VectorSimilarityScript.checkByteRange(new float[] { 128 }));
        assertThrows(IllegalArgumentException.class, () -> VectorSimilarityScript.checkByteRange(new float[] { 0.5f }));
    }
}
