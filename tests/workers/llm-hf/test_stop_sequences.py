"""Stop sequences: the text ends right before the first one, streamed or not, even when split across tokens."""

from __future__ import annotations

from worker_llm_hf.detokenize import StopMatcher


def _feed_all(matcher: StopMatcher, pieces: list[str]) -> tuple[str, bool]:
    out = []
    for piece in pieces:
        text, stopped = matcher.feed(piece)
        out.append(text)
        if stopped:
            return "".join(out), True
    return "".join(out) + matcher.flush(), False


def test_matcher_cuts_before_a_stop_split_over_pieces():
    assert _feed_all(StopMatcher(["END"]), ["abc E", "N", "D tail"]) == ("abc ", True)


def test_matcher_holds_back_only_what_could_start_a_stop():
    matcher = StopMatcher(["###"])
    assert matcher.feed("ab#") == ("ab", False)
    assert matcher.feed("c") == ("#c", False)


def test_matcher_stops_at_the_earliest_of_several_stops():
    assert _feed_all(StopMatcher(["zz", "b"]), ["a", "bzz"]) == ("a", True)


def test_matcher_releases_a_held_tail_at_the_end():
    assert _feed_all(StopMatcher(["xyz"]), ["hello x", "y"]) == ("hello xy", False)


def test_matcher_without_stops_passes_text_through():
    assert StopMatcher([]).feed("anything") == ("anything", False)


def _stop_inside(text: str) -> str:
    """A stop string taken from the middle of a greedy text (random weights: content is arbitrary)."""
    middle = text[len(text) // 2:len(text) // 2 + 2]
    assert middle.strip(), f"greedy text too short or blank to pick a stop from: {text!r}"
    return middle


def test_generation_ends_before_the_stop_sequence(run, greedy):
    request = greedy(prompt="Hello world", max_tokens=40)
    [full] = run(request)
    stop = _stop_inside(full["text"])
    [stopped] = run({**request, "stop": stop})
    assert stopped["text"] == full["text"][:full["text"].index(stop)]
    assert stopped["finish_reason"] == "stop"
    assert stopped["usage"]["completion_tokens"] < 40


def test_streamed_generation_ends_before_the_stop_sequence(run, greedy):
    request = greedy(prompt="Hello world", max_tokens=40)
    [full] = run(request)
    stop = _stop_inside(full["text"])
    chunks = run({**request, "stop": ["never-generated-\u2603", stop], "stream": True})
    assert "".join(c["text"] for c in chunks) == full["text"][:full["text"].index(stop)]
    assert chunks[-1]["finish_reason"] == "stop"
