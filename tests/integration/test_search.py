"""The `message_search` read model on real PostgreSQL: the log's function, rebuilt and verified."""

from __future__ import annotations

from domain.app import Parley
from domain.search import words
from projectors.rebuild import Rebuild
from projectors.runner import LiveProjector
from projectors.search import SearchProjection
from projectors.verify import verify
from shared.settings import Settings
from tests.integration.projection import drain, query, verified
from tests.integration.workload import Workload


def documents(settings: Settings) -> dict[int, list[str]]:
    """Each row's lexemes (sorted, as a tsvector keeps them)."""
    return {i: list(lexemes) for i, lexemes in query(
        settings, "SELECT id, tsvector_to_array(document) FROM message_search")}


def test_search_rows_follow_posts_edits_and_deletions_in_any_batching(
        app: Parley, settings: Settings) -> None:
    workload = Workload(app, seed=12)
    workload.setup()
    workload.run(150)
    workload.delete_a_chat()
    workload.run(40)
    workload.read_all_then_delete(3)
    drain(LiveProjector(settings, app=app), limit=7)  # edits and deletions of older rows too

    # exactly the live text messages, each with the words of its current text
    texts = dict(query(settings, "SELECT id, content FROM messages WHERE type = 'text'"))
    assert documents(settings) == {i: sorted(set(words(text))) for i, text in texts.items()}
    [(edited,)] = query(settings, "SELECT count(*) FROM messages m JOIN message_search s"
                                  " USING (id) WHERE m.edited_at IS NOT NULL")
    assert edited > 0 and workload.deleted_messages > 0 and workload.deleted
    [(matches,)] = query(settings, "SELECT count(*) FROM message_search"
                                   " WHERE document @@ 'edit:*'::tsquery")
    assert matches == edited  # every edit in the workload writes "edited ..."

    for batch_size in (5000, 3):  # one batch (in-memory paths) and many (older-row paths)
        verified(settings, [SearchProjection()], app, batch_size=batch_size)
    before = documents(settings)
    assert set(Rebuild(settings, [SearchProjection()], app=app).run()) == {"search"}
    assert documents(settings) == before

    query(settings, "UPDATE message_search SET document = 'tampered'::tsvector"
                    " WHERE id = (SELECT min(id) FROM message_search)")
    [verdict] = verify(settings, [SearchProjection()], app=app)
    assert not verdict.equal and "tampered" in verdict.tables[0].only_live[0]
