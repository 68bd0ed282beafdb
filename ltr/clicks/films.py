"""A dated test collection: 17k real films (``bokeh_sampledata``'s Wikidata snapshot, CC0) in BEIR layout.

The source has no plots, so each document's ``text`` is a description written from its metadata
(genres in plain words, language, countries, release date, director, writers, cast). Queries are
synthetic but meaningful: genre phrases ("romantic comedy", "science fiction horror"), alone or with
a language ("french crime drama"). A film is relevant to a query when it has every genre of the query
(and the language, when named); its grade comes from its reviews::

    1  matches                          (Tomatometer below 60, or no score)
    2  matches, Tomatometer >= 60
    3  matches, Tomatometer >= 85 with at least 20 reviews

Relevance ignores the release date on purpose: recency is what the freshness experiment adds
through simulated users (``ltr.clicks.simulated_users.FreshnessPreference``), so a model can only learn it from
clicks. Every document carries ``released`` (ISO date, the timestamp field) and numeric fields
(``year``, ``rating``, ``meter``, ``reviews``, ``runtime``) and keyword fields (``genres``,
``language``, ``country``). The index profile that fits is ``FILMS_PROFILE``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from hybridrank.errors import DataError

TIMESTAMP_FIELD = "released"
NUMERIC_FIELDS = ("year", "rating", "meter", "reviews", "runtime")
KEYWORD_FIELDS = ("genres", "language", "country")

# The ``[indices.films]`` profile this collection is meant for (also written to the folder's README).
FILMS_PROFILE = """[indices.films]
text_fields = { title = 1.0, text = 1.0 }
embed_fields = ["title", "text"]
timestamp_field = "released"
numeric_fields = ["year", "rating", "meter", "reviews", "runtime"]
keyword_fields = ["genres", "language", "country"]
freshness_half_life_days = 3650.0   # films span 1940-2014: a 10-year half-life, not 30 days
candidate_window = 100
"""

# genre label -> (word when it qualifies another genre, word when it heads the phrase)
GENRE_WORDS: dict[str, tuple[str, str]] = {
    "Action": ("action", "action film"), "Adventure": ("adventure", "adventure film"),
    "Animation": ("animated", "animated film"), "Biography": ("biographical", "biographical film"),
    "Comedy": ("comedy", "comedy"), "Crime": ("crime", "crime film"),
    "Documentary": ("documentary", "documentary"), "Drama": ("drama", "drama"),
    "Family": ("family", "family film"), "Fantasy": ("fantasy", "fantasy film"),
    "History": ("historical", "historical film"), "Horror": ("horror", "horror film"),
    "Music": ("music", "music film"), "Musical": ("musical", "musical"),
    "Mystery": ("mystery", "mystery"), "Romance": ("romantic", "romance"),
    "Sci-Fi": ("science fiction", "science fiction film"), "Sport": ("sports", "sports film"),
    "Thriller": ("thriller", "thriller"), "War": ("war", "war film"), "Western": ("western", "western"),
}
# Which genre heads a phrase when several are asked for ("war drama", "romantic comedy").
HEAD_ORDER = ("Drama", "Comedy", "Thriller", "Horror", "Documentary", "Western", "Musical", "Mystery",
              "Romance", "Adventure", "Fantasy", "Action", "Crime", "War", "Biography", "History", "Sport",
              "Family", "Animation", "Sci-Fi", "Music")
QUERY_LANGUAGES = ("French", "Spanish", "German", "Italian", "Japanese", "Hindi", "Russian", "Korean",
                   "Swedish", "Cantonese", "Mandarin")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")


@dataclass(frozen=True)
class Film:
    doc_id: str
    title: str
    released: date
    genres: tuple[str, ...]
    languages: tuple[str, ...]
    countries: tuple[str, ...]
    director: str
    writer: str
    cast: tuple[str, ...]
    runtime: float | None
    rating: float | None  # Rotten Tomatoes average rating, 0-10
    meter: int | None  # Tomatometer, 0-100
    reviews: int | None

    def document(self) -> dict[str, Any]:
        """The BEIR corpus line: ``_id``, ``title``, ``text``, the timestamp, numeric and keyword fields."""
        doc: dict[str, Any] = {"_id": self.doc_id, "title": self.title, "text": describe(self),
                               TIMESTAMP_FIELD: self.released.isoformat(), "year": self.released.year,
                               "genres": list(self.genres), "language": list(self.languages),
                               "country": list(self.countries)}
        for name, value in (("rating", self.rating), ("meter", self.meter), ("reviews", self.reviews),
                            ("runtime", self.runtime)):
            if value is not None:
                doc[name] = value
        return doc


@dataclass(frozen=True)
class FilmQuery:
    query_id: str
    text: str
    genres: frozenset[str]
    language: str | None = None

    def matches(self, film: Film) -> bool:
        return self.genres <= set(film.genres) and (self.language is None or self.language in film.languages)


@dataclass(frozen=True)
class FilmsDatasetStats:
    path: Path
    documents: int
    queries: int
    test_queries: int
    train_queries: int
    judgments: int
    first_release: date
    last_release: date


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


def films_db_path() -> Path:
    """The SQLite file shipped by ``bokeh_sampledata`` (DataError with the install hint if absent)."""
    try:
        from bokeh_sampledata.movies_data import movie_path
    except ImportError as exc:
        raise DataError("the films corpus needs the bokeh-sampledata package: pip install bokeh-sampledata") from exc
    return Path(movie_path)


def load_films(db_path: str | Path | None = None) -> list[Film]:
    """Every film of the snapshot with a release date, in the database's order; ids are IMDb ids."""
    path = Path(db_path) if db_path is not None else films_db_path()
    if not path.is_file():
        raise DataError(f"films database not found: {path}")
    sql = ("SELECT o.ID, o.imdbID, o.Title, o.Released, o.Genre, o.Language, o.Country, o.Director, o.Writer, "
           "o.Cast, o.Runtime, t.Rating, t.Meter, t.Reviews FROM omdb o LEFT JOIN tomatoes t ON o.ID = t.ID "
           "ORDER BY o.ID")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
            rows = con.execute(sql).fetchall()
    except sqlite3.Error as exc:
        raise DataError(f"{path}: cannot read the films database ({exc})") from exc
    films: list[Film] = []
    seen: set[str] = set()
    for (row_id, imdb, title, released, genre, language, country, director, writer, cast, runtime,
         rating, meter, reviews) in rows:
        if not title or not released:
            continue
        try:
            day = date.fromisoformat(str(released)[:10])
        except ValueError:
            continue
        doc_id = str(imdb or f"film-{row_id}")
        if doc_id in seen:  # two rows of the snapshot share an IMDb id
            doc_id = f"{doc_id}-{row_id}"
        seen.add(doc_id)
        films.append(Film(doc_id=doc_id, title=str(title), released=day, genres=_split(genre),
                          languages=_split(language), countries=_split(country), director=str(director or ""),
                          writer=str(writer or ""), cast=_split(cast),
                          runtime=float(runtime) if runtime is not None else None,
                          rating=float(rating) if rating is not None else None,
                          meter=int(meter) if meter is not None else None,
                          reviews=int(reviews) if reviews is not None else None))
    return films


def genre_phrase(genres: Iterable[str]) -> str:
    """Genres in plain words, the head genre last: {Comedy, Romance} -> "romantic comedy"."""
    chosen = [g for g in HEAD_ORDER if g in set(genres)]
    if not chosen:
        return "film"
    head, *modifiers = chosen
    words = [GENRE_WORDS[g][0] for g in reversed(modifiers)]
    return " ".join([*words, GENRE_WORDS[head][1]])


def describe(film: Film) -> str:
    """The document text: what the metadata says, in sentences (the source has no plot)."""
    language = f"{film.languages[0]}-language " if film.languages else ""
    kind = f"{language}{genre_phrase(film.genres)}"
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    parts = [f"{film.title} is {article} {kind}"]
    if film.countries:
        parts[0] += f" from {', '.join(film.countries)}"
    day = film.released
    when = str(day.year) if (day.month, day.day) == (1, 1) else f"{day.day} {MONTHS[day.month - 1]} {day.year}"
    parts[0] += f", released {when}."
    if film.genres:
        parts.append(f"Genres: {', '.join(film.genres)}.")
    if len(film.languages) > 1:
        parts.append(f"Languages: {', '.join(film.languages)}.")
    if film.director:
        parts.append(f"Directed by {film.director}.")
    if film.writer:
        parts.append(f"Written by {film.writer}.")
    if film.cast:
        parts.append(f"Starring {', '.join(film.cast[:6])}.")
    if film.runtime:
        parts.append(f"Runtime {int(film.runtime)} minutes.")
    return " ".join(parts)


def grade(film: Film) -> int:
    """The grade of a matching film (see the module docstring)."""
    if film.meter is not None and film.meter >= 85 and (film.reviews or 0) >= 20:
        return 3
    if film.meter is not None and film.meter >= 60:
        return 2
    return 1


def candidate_queries(films: Sequence[Film]) -> list[FilmQuery]:
    """Every genre single/pair, and language + genre, that the collection can answer (unfiltered)."""
    genres = sorted({g for f in films for g in f.genres if g in GENRE_WORDS})
    specs: list[tuple[frozenset[str], str | None]] = [(frozenset([g]), None) for g in genres]
    specs += [(frozenset([a, b]), None) for i, a in enumerate(genres) for b in genres[i + 1:]]
    specs += [(frozenset([g]), lang) for lang in QUERY_LANGUAGES for g in genres]
    out: list[FilmQuery] = []
    for gs, lang in specs:
        text = genre_phrase(gs)
        if lang:
            text = f"{lang.lower()} {text}"
        out.append(FilmQuery(query_id="", text=text, genres=gs, language=lang))
    return out


def build_queries(films: Sequence[Film], *, min_relevant: int = 5, max_relevant: int = 400,
                  ) -> list[tuple[FilmQuery, dict[str, int]]]:
    """Queries with between ``min_relevant`` and ``max_relevant`` matching films, with their qrels.

    Broad queries ("drama": 9k films) are left out: their judgments would be all of one genre, and
    no ranking could be told apart from another on them.
    """
    by_facet: dict[str, set[int]] = {}  # "g:<genre>" / "l:<language>" -> film positions
    for i, film in enumerate(films):
        for g in film.genres:
            by_facet.setdefault(f"g:{g}", set()).add(i)
        for lang in film.languages:
            by_facet.setdefault(f"l:{lang}", set()).add(i)
    kept: list[tuple[FilmQuery, dict[str, int]]] = []
    for number, query in enumerate(candidate_queries(films), start=1):
        facets = [f"g:{g}" for g in sorted(query.genres)] + ([f"l:{query.language}"] if query.language else [])
        matching = set.intersection(*(by_facet.get(k, set()) for k in facets))
        judged = {films[i].doc_id: grade(films[i]) for i in sorted(matching)}
        if min_relevant <= len(judged) <= max_relevant:
            qid = f"q{number:04d}"
            kept.append((FilmQuery(qid, query.text, query.genres, query.language), judged))
    return kept


def write_films_dataset(out_dir: str | Path, *, db_path: str | Path | None = None, limit: int | None = None,
                        test_fraction: float = 0.3, seed: int = 0, min_relevant: int = 5,
                        max_relevant: int = 400) -> FilmsDatasetStats:
    """Write the films collection as a BEIR folder (corpus.jsonl, queries.jsonl, qrels/{train,test}.tsv).

    ``limit`` keeps a seeded random sample of films (queries and judgments are built on the sample);
    the query split is a seeded shuffle by query. The folder is replaced atomically-enough: files are
    written to ``*.tmp`` and renamed.
    """
    if not 0 < test_fraction < 1:
        raise DataError(f"test_fraction must be in (0, 1), got {test_fraction}")
    films = load_films(db_path)
    if limit is not None and limit < len(films):
        keep = np.sort(np.random.default_rng(seed).choice(len(films), size=max(limit, 0), replace=False))
        films = [films[i] for i in keep]
    if not films:
        raise DataError("no films to write")
    queries = build_queries(films, min_relevant=min_relevant, max_relevant=max_relevant)
    if len(queries) < 2:
        raise DataError(f"only {len(queries)} queries have {min_relevant}-{max_relevant} relevant films; "
                        "use more films (a larger --limit) or looser bounds")
    order = np.random.default_rng([seed, 1]).permutation(len(queries))
    n_test = min(max(1, round(len(queries) * test_fraction)), len(queries) - 1)
    test_ids = {queries[i][0].query_id for i in order[:n_test]}

    out = Path(out_dir).expanduser()
    (out / "qrels").mkdir(parents=True, exist_ok=True)

    def write(name: str, lines: Iterable[str]) -> None:
        tmp = out / f"{name}.tmp"
        with tmp.open("w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(line + "\n")
        tmp.replace(out / name)

    write("corpus.jsonl", (json.dumps(f.document(), ensure_ascii=False) for f in films))
    write("queries.jsonl", (json.dumps({"_id": q.query_id, "text": q.text, "genres": sorted(q.genres),
                                        "language": q.language}, ensure_ascii=False) for q, _ in queries))
    for split in ("train", "test"):
        rows = ["query-id\tcorpus-id\tscore"]
        rows += [f"{q.query_id}\t{doc}\t{g}" for q, judged in queries
                 if (q.query_id in test_ids) == (split == "test") for doc, g in judged.items()]
        write(f"qrels/{split}.tsv", rows)
    first, last = min(f.released for f in films), max(f.released for f in films)
    readme = (f"# films\n\n{len(films)} films released {first} .. {last}, {len(queries)} queries "
              f"({n_test} test). Written by `hybridrank datasets films` from bokeh_sampledata "
              f"(Wikidata, CC0); see ltr/clicks/films.py for how queries and grades are made.\n\n"
              f"Index profile:\n\n```toml\n{FILMS_PROFILE}```\n")
    write("README.md", [readme])
    return FilmsDatasetStats(path=out, documents=len(films), queries=len(queries), test_queries=n_test,
                             train_queries=len(queries) - n_test, judgments=sum(len(j) for _, j in queries),
                             first_release=first, last_release=last)
