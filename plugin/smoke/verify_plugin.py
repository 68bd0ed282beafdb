"""End-to-end check of the hybridrank Elasticsearch plugin against a running node that has it installed.

    python plugin/smoke/verify_plugin.py http://127.0.0.1:9270

Uses the official client (``elasticsearch`` package) only. Creates and finally deletes the index
``hybridrank-plugin-smoke``. Prints what it saw and exits non-zero on the first mismatch.
"""

from __future__ import annotations

import json
import math
import sys

from elasticsearch import BadRequestError, Elasticsearch

INDEX = "hybridrank-plugin-smoke"
TOLERANCE = 1e-5  # Lucene scores in float with SIMD sums; the script sums in double

# 4-d vectors; the dot_product fields need unit length, byte fields need integers in [-128, 127]
RAW = {
    "a": [0.5, 0.1, -0.3, 0.8],
    "b": [-0.2, 0.9, 0.4, 0.1],
    "c": [0.7, -0.6, 0.2, -0.1],
    "d": [0.1, 0.2, 0.3, 0.4],
    "e": [-0.9, -0.1, 0.05, 0.3],
}
QUERY = [0.3, 0.4, -0.1, 0.6]
BYTES = {"a": [12, -7, 100, 3], "b": [-128, 5, 9, 127], "c": [1, 1, 1, 1], "d": [50, 60, -70, 80], "e": [-3, -40, 22, 0]}
BYTE_QUERY = [10, -20, 30, 40]


def unit(v: list[float]) -> list[float]:
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


# field -> (mapping, the vectors to index, the query vector)
FIELDS = {
    "v_cosine": ({"type": "dense_vector", "dims": 4, "similarity": "cosine", "index_options": {"type": "hnsw"}}, RAW, QUERY),
    "v_dot": ({"type": "dense_vector", "dims": 4, "similarity": "dot_product", "index_options": {"type": "hnsw"}},
              {k: unit(v) for k, v in RAW.items()}, unit(QUERY)),
    "v_l2": ({"type": "dense_vector", "dims": 4, "similarity": "l2_norm", "index_options": {"type": "hnsw"}}, RAW, QUERY),
    "v_mip": ({"type": "dense_vector", "dims": 4, "similarity": "max_inner_product", "index_options": {"type": "hnsw"}}, RAW, QUERY),
    "b_dot": ({"type": "dense_vector", "dims": 4, "element_type": "byte", "similarity": "dot_product"}, BYTES, BYTE_QUERY),
    "b_cosine": ({"type": "dense_vector", "dims": 4, "element_type": "byte", "similarity": "cosine"}, BYTES, BYTE_QUERY),
    "b_l2": ({"type": "dense_vector", "dims": 4, "element_type": "byte", "similarity": "l2_norm"}, BYTES, BYTE_QUERY),
    # the default index_options for a 4-d float field (quantized): kNN scores are then approximate
    "v_cosine_default": ({"type": "dense_vector", "dims": 4, "similarity": "cosine"}, RAW, QUERY),
}
SIMILARITY = {f: m["similarity"] for f, (m, _, _) in FIELDS.items()}

failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(("  ok   " if ok else "  FAIL ") + what)
    if not ok:
        failures.append(what)


def section(title: str) -> None:
    print(f"\n== {title}")


def main(url: str) -> int:
    es = Elasticsearch(url, request_timeout=30)

    section("root endpoint: info() / ping()")
    info = es.info()
    print(json.dumps(info.body, indent=2))
    check(es.ping(), "ping() is True")
    check(info["tagline"] == "You Know, for Search", "tagline")
    check(set(info["version"]) == {
        "number", "build_flavor", "build_type", "build_hash", "build_date", "build_snapshot", "lucene_version",
        "minimum_wire_compatibility_version", "minimum_index_compatibility_version"}, "version{} has the stock keys")
    check(list(info.body) == ["name", "cluster_name", "cluster_uuid", "version", "tagline"], "top-level keys in stock order")
    check(info.meta.headers.get("X-Elastic-Product") == "Elasticsearch", "X-Elastic-Product header")

    section("plugin detection")
    plugins = es.cat.plugins(format="json")
    print(plugins.body)
    check(any(p["component"] == "hybridrank" for p in plugins), "_cat/plugins lists hybridrank")

    section("native score script vs kNN _score")
    es.options(ignore_status=404).indices.delete(index=INDEX)
    mappings = {"properties": {f: m for f, (m, _, _) in FIELDS.items()} | {"title": {"type": "text"}}}
    es.indices.create(index=INDEX, mappings=mappings, settings={"number_of_shards": 1, "number_of_replicas": 0})
    for doc_id in RAW:
        es.index(index=INDEX, id=doc_id, document={f: vecs[doc_id] for f, (_, vecs, _) in FIELDS.items()} | {"title": doc_id})
    es.index(index=INDEX, id="novec", document={"title": "a document without vectors"})
    es.indices.refresh(index=INDEX)

    for field, (_, _, query) in FIELDS.items():
        knn = es.search(index=INDEX, knn={"field": field, "query_vector": query, "k": 10, "num_candidates": 100}, size=10)
        knn_scores = {h["_id"]: h["_score"] for h in knn["hits"]["hits"]}
        script = es.search(index=INDEX, size=10, query={"script_score": {
            "query": {"match_all": {}},
            "script": {"lang": "hybridrank", "source": "vector_similarity",
                       "params": {"field": field, "query_vector": query, "similarity": SIMILARITY[field]}}}})
        script_scores = {h["_id"]: h["_score"] for h in script["hits"]["hits"]}
        diff = max(abs(knn_scores[k] - script_scores[k]) for k in knn_scores)
        print(f"  {field:18} {SIMILARITY[field]:18} knn={json.dumps({k: round(v, 6) for k, v in sorted(knn_scores.items())})}")
        print(f"  {'':18} {'':18} script={json.dumps({k: round(v, 6) for k, v in sorted(script_scores.items())})}  max|diff|={diff:.2e}")
        check(set(knn_scores) == set(RAW), f"{field}: kNN found the 5 vector docs")
        check(script_scores.get("novec") == 0.0, f"{field}: doc without the field scores missing_score 0")
        if field == "v_cosine_default":
            # quantized HNSW (int8 for a small float field): kNN _score comes from the quantized vectors, so it is
            # approximate; rescoring with the raw vectors gives the exact score, which the script must match
            options = es.indices.get_mapping(index=INDEX)[INDEX]["mappings"]["properties"][field].get("index_options")
            print(f"  {'':18} default index_options: {options}; kNN _score differs by {diff:.3f} (quantization)")
            rescored = es.search(index=INDEX, size=10, knn={"field": field, "query_vector": query, "k": 10,
                                 "num_candidates": 100, "rescore_vector": {"oversample": 3.0}})
            knn_scores = {h["_id"]: h["_score"] for h in rescored["hits"]["hits"]}
            diff = max(abs(knn_scores[k] - script_scores[k]) for k in knn_scores)
            print(f"  {'':18} {'':18} knn+rescore_vector={json.dumps({k: round(v, 6) for k, v in sorted(knn_scores.items())})}  max|diff|={diff:.2e}")
        check(diff <= TOLERANCE, f"{field}: script scores == kNN _score within {TOLERANCE:g}")
        # ties (equal scores) may come back in either order: rank by (score, id)
        order_knn = sorted(knn_scores, key=lambda k: (-round(knn_scores[k], 5), k))
        order_script = sorted((k for k in script_scores if k != "novec"), key=lambda k: (-round(script_scores[k], 5), k))
        check(order_knn == order_script, f"{field}: same ranking")

    section("script: similarity defaults to the mapping's, missing_score, explain, errors")
    res = es.search(index=INDEX, size=10, explain=True, query={"script_score": {
        "query": {"match_all": {}},
        "script": {"lang": "hybridrank", "source": "vector_similarity",
                   "params": {"field": "v_l2", "query_vector": QUERY, "missing_score": 0.25}}}})
    hits = {h["_id"]: h for h in res["hits"]["hits"]}
    check(hits["novec"]["_score"] == 0.25, "missing_score 0.25 applied to the vector-less doc")
    print("  explanation:", hits["a"]["_explanation"]["description"], "|", hits["a"]["_explanation"]["details"][0]["description"] if hits["a"]["_explanation"]["details"] else "")
    res = es.search(index=INDEX, size=10, query={"script_score": {
        "query": {"exists": {"field": "v_l2"}}, "script": {"lang": "hybridrank", "source": "vector_similarity",
        "params": {"field": "v_l2", "query_vector": QUERY}}}})
    check(res["hits"]["total"]["value"] == 5, "an exists filter drops the vector-less doc")
    for params, source, expect in [
        ({"field": "v_l2", "query_vector": [1, 2, 3]}, "vector_similarity", "dimensions"),
        ({"field": "title", "query_vector": QUERY}, "vector_similarity", "dense_vector"),
        ({"query_vector": QUERY}, "vector_similarity", "missing required parameter [field]"),
        ({"field": "v_l2", "query_vector": QUERY, "similarity": "hamming"}, "vector_similarity", "[similarity] must be one of"),
        ({"field": "b_dot", "query_vector": [0.5, 1, 2, 3]}, "vector_similarity", "integers in [-128, 127]"),
        ({}, "no_such_script", "unknown [hybridrank] script"),
    ]:
        try:
            es.search(index=INDEX, query={"script_score": {"query": {"match_all": {}},
                      "script": {"lang": "hybridrank", "source": source, "params": params}}})
            check(False, f"error expected for {params} {source}")
        except BadRequestError as exc:
            reason = json.dumps(exc.body)
            check(expect in reason, f"400 mentioning {expect!r}")

    section("English stemming filters")
    sentence = "running foxes' jumped"
    # KStem is dictionary-based and keeps "running" (a word in its lexicon), as analysis-common's kstem does
    chains = {
        "porter": (["hybridrank_english_possessive", "lowercase", "hybridrank_porter_stem"], ["run", "fox", "jump"]),
        "kstem": (["hybridrank_english_possessive", "lowercase", "hybridrank_kstem"], ["running", "fox", "jump"]),
        "snowball": (["hybridrank_english_possessive", "lowercase", "hybridrank_snowball"], ["run", "fox", "jump"]),
        "minimal": (["hybridrank_english_possessive", "lowercase", "hybridrank_english_minimal_stem"], ["running", "foxe", "jumped"]),  # plural-only, Lucene keeps "foxe"
    }
    for label, (filters, expected) in chains.items():
        toks = [t["token"] for t in es.indices.analyze(tokenizer="standard", filter=filters, text=sentence)["tokens"]]
        print(f"  _analyze (no index) {label:8} {sentence!r} -> {toks}")
        check(toks == expected, f"{label} -> {expected}")
    toks = [t["token"] for t in es.indices.analyze(tokenizer="standard", filter=["hybridrank_english_possessive"],
            text="the fox's den")["tokens"]]
    check(toks == ["the", "fox", "den"], f"english_possessive drops 's: {toks}")
    toks = [t["token"] for t in es.indices.analyze(tokenizer="standard", filter=[
        "lowercase", {"type": "hybridrank_snowball", "language": "English"}], text="generously organized")["tokens"]]
    print("  inline hybridrank_snowball(English):", toks)
    check(toks == ["generous", "organ"], "inline snowball English")
    toks = [t["token"] for t in es.indices.analyze(analyzer="hybridrank_english", text="The fox's running jumps")["tokens"]]
    print("  prebuilt hybridrank_english:", toks)
    check(toks == ["fox", "run", "jump"], "hybridrank_english drops the stop word and the possessive, stems")

    es.options(ignore_status=404).indices.delete(index=INDEX + "-text")
    es.indices.create(index=INDEX + "-text", settings={
        "number_of_shards": 1, "number_of_replicas": 0,
        "analysis": {
            "filter": {
                "english_stop": {"type": "stop", "stopwords": "_english_"},
                "english_keywords": {"type": "hybridrank_keyword_marker", "keywords": ["example"]},
                "english_stemmer": {"type": "hybridrank_stemmer", "language": "english"},
                "english_possessive_stemmer": {"type": "hybridrank_stemmer", "language": "possessive_english"},
            },
            "analyzer": {
                # Elasticsearch's documented re-implementation of the `english` analyzer, with our filters
                "rebuilt_english": {"tokenizer": "standard", "filter": [
                    "english_possessive_stemmer", "lowercase", "english_stop", "english_keywords", "english_stemmer"]},
                "english_kstem": {"tokenizer": "standard", "filter": [
                    "hybridrank_english_possessive", "lowercase", "english_stop", "hybridrank_kstem"]},
            },
        }}, mappings={"properties": {"body": {"type": "text", "analyzer": "rebuilt_english"}}})
    for analyzer, expected in (("rebuilt_english", ["run", "fox", "jump"]), ("english_kstem", ["running", "fox", "jump"])):
        toks = [t["token"] for t in es.indices.analyze(index=INDEX + "-text", analyzer=analyzer, text=sentence)["tokens"]]
        print(f"  index analyzer {analyzer:16} {sentence!r} -> {toks}")
        check(toks == expected, f"{analyzer} -> {expected}")
    toks = [t["token"] for t in es.indices.analyze(index=INDEX + "-text", analyzer="rebuilt_english", text="examples example")["tokens"]]
    check(toks == ["exampl", "example"], f"keyword_marker protects 'example' from the stemmer: {toks}")
    rebuilt = [t["token"] for t in es.indices.analyze(index=INDEX + "-text", analyzer="rebuilt_english",
               text="The Quick Brown Foxes' jumping over the lazy dog's kennels, organizations & generalities")["tokens"]]
    lucene = [t["token"] for t in es.indices.analyze(analyzer="hybridrank_english",
              text="The Quick Brown Foxes' jumping over the lazy dog's kennels, organizations & generalities")["tokens"]]
    print("  rebuilt_english:", rebuilt)
    check(rebuilt == lucene, "rebuilt_english == hybridrank_english (Lucene EnglishAnalyzer)")
    es.index(index=INDEX + "-text", id="1", document={"body": "The fox's cubs were running and jumped"}, refresh=True)
    hits = es.search(index=INDEX + "-text", query={"match": {"body": "jumping runs"}})["hits"]["hits"]
    check(len(hits) == 1, "BM25 match 'jumping runs' finds 'running and jumped' via the stemmer")

    es.indices.delete(index=[INDEX, INDEX + "-text"])
    print(f"\n{len(failures)} failed" if failures else "\nall checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:9270"))
