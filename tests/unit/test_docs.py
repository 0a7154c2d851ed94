"""The docs stay true: the README's flow diagram matches the topology, and every link between
the markdown files (and every #anchor) resolves."""

from __future__ import annotations

import re
from pathlib import Path

from infra.model.config import ROOT, DeploymentConfig
from infra.model.topology import Topology, build_topology

README = ROOT / "README.md"
# Folders that hold other projects' markdown (virtualenvs, caches, generated code).
SKIPPED_DIRS = {"node_modules", "cdktf.out", "imports", "__pycache__"}


def _mermaid(text: str) -> str:
    blocks = re.findall(r"^```mermaid\n(.*?)^```", text, re.M | re.S)
    assert len(blocks) == 1, "README.md should hold exactly one mermaid block (the data flow)"
    return str(blocks[0])


def _nodes(diagram: str) -> dict[str, str]:
    """Node id -> its definition line (`id["label"]`, `id(["label"])`, ...)."""
    return {
        m.group(1): m.group(0)
        for m in re.finditer(r"^\s*(\w+)\s*[\[({>][^\n]*$", diagram, re.M)
        if "-->" not in m.group(0) and "-.->" not in m.group(0)
    }


def _edges(diagram: str) -> set[tuple[str, str, str]]:
    """(from, kind, to): kind `-->` for events, `-.->` for dead letters."""
    return {
        (m.group(1), m.group(2), m.group(3))
        for m in re.finditer(r"^\s*(\w+)\s*(-->|-\.->)(?:\|[^|\n]*\|)?\s*(\w+)\s*$", diagram, re.M)
    }


def _topology() -> Topology:
    return build_topology(DeploymentConfig(project="my-gcp-project"))


def _expected_edges(t: Topology) -> set[tuple[str, str, str]]:
    edges = {
        (f"b_{t.trigger.bucket}", "-->", "trigger"),
        ("trigger", "-->", f"f_{t.trigger.function}"),
        (f"b_{t.notification.bucket}", "-->", f"t_{t.notification.topic}"),
    }
    for s in t.subscriptions.values():
        edges.add((f"t_{s.topic}", "-->", f"s_{s.key}"))
        edges.add((f"s_{s.key}", "-.->", f"t_{s.dead_letter_topic}"))
        if s.push_function:
            edges.add((f"s_{s.key}", "-->", f"f_{s.push_function}"))
    for f in t.functions.values():
        for g in f.grants:
            if g.kind == "topic" and g.role == "roles/pubsub.publisher":
                edges.add((f"f_{f.key}", "-->", f"t_{g.target}"))
            if g.kind == "bucket" and g.role == "roles/storage.objectUser":
                edges.add((f"f_{f.key}", "-->", f"b_{g.target}"))
    return edges


def test_readme_diagram_draws_every_resource_of_the_topology():
    t = _topology()
    diagram = _mermaid(README.read_text())
    nodes = _nodes(diagram)
    expected = {
        **{f"b_{b.key}": b.name.replace(t.project, "PROJECT") for b in t.buckets.values()},
        **{f"t_{x.key}": x.name for x in t.topics.values()},
        **{f"s_{s.key}": s.name for s in t.subscriptions.values()},
        **{f"f_{f.key}": f.name for f in t.functions.values()},
        **{f"c_{key}": name for key, name in t.collections.items()},
        "trigger": t.trigger.event_type,
    }
    for node, name in expected.items():
        assert node in nodes, f"the README diagram has no node {node} ({name})"
        assert re.search(rf"\b{re.escape(name)}\b", nodes[node]), f"{node} should show {name}"
    for key, topic in t.topics.items():
        label = nodes[f"t_{key}"]
        assert ("dead-letter topic" in label) == topic.is_dead_letter, label
    for s in t.subscriptions.values():
        label = nodes[f"s_{s.key}"]
        assert ("push" if s.push_function else "pull") in label, label
        values = re.findall(r'"([^"]+)"', s.filter)
        assert all(v in label for v in values) if values else "no filter" in label, (
            f"{label} should show the filter {s.filter!r}"
        )
    for event_type in t.notification.event_types:
        assert event_type in nodes[f"t_{t.notification.topic}"]
    missing = _expected_edges(t) - _edges(diagram)
    assert not missing, f"the README diagram lacks these arrows: {sorted(missing)}"


def test_the_diagram_check_sees_a_missing_arrow():
    diagram = _mermaid(README.read_text())
    cut = diagram.replace("s_cleanup -.->|dead letter| t_dead_letters\n", "")
    assert cut != diagram
    assert ("s_cleanup", "-.->", "t_dead_letters") in _expected_edges(_topology()) - _edges(cut)


def _markdown_files() -> list[Path]:
    return sorted(
        p
        for p in ROOT.rglob("*.md")
        if not any(
            part.startswith(".") or part in SKIPPED_DIRS for part in p.relative_to(ROOT).parts
        )
    )


def github_anchors(text: str) -> set[str]:
    """The #anchors GitHub gives a file's headings (lowercase, punctuation dropped, spaces
    to hyphens, `-1`, `-2` on repeats)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#* *$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(f"{slug}-{count}" if count else slug)
    return anchors


def _links(text: str) -> list[str]:
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)


def test_github_anchors_follow_githubs_rules():
    text = "# A b\n## Result events (topic `image-events`)\n```\n# not a heading\n```\n## A b\n"
    assert github_anchors(text) == {"a-b", "result-events-topic-image-events", "a-b-1"}


def test_every_relative_link_between_the_markdown_files_resolves():
    files = _markdown_files()
    assert README in files and (ROOT / "docs" / "architecture.md") in files
    broken = []
    for md in files:
        for link in _links(md.read_text()):
            if re.match(r"[a-z][a-z0-9+.-]*:", link):  # https:, mailto:
                continue
            path, _, anchor = link.partition("#")
            target = (md.parent / path).resolve() if path else md
            where = f"{md.relative_to(ROOT)}: ({link})"
            if not target.exists():
                broken.append(f"{where}: no such file")
            elif (
                anchor
                and target.suffix == ".md"
                and anchor not in github_anchors(target.read_text())
            ):
                broken.append(f"{where}: no heading #{anchor} in {target.name}")
    assert not broken, "\n".join(broken)


def test_the_reading_map_names_files_that_exist():
    """README's "Read the code in this order": a newcomer's first hop into the code."""
    text = README.read_text()
    section = text[text.index("## Read the code in this order") :]
    section = section[: section.index("\n## ")]
    named = re.findall(r"`([\w./-]+/[\w./-]*)`", section)
    assert "functions/image_pipeline/imaging.py" in named  # the thumbnailer, in one hop
    assert [p for p in named if not (ROOT / p).exists()] == []


def test_every_repository_path_the_docs_name_exists():
    """A path in backticks (`infra/model/topology.py`) is a promise that the file is there."""
    top = r"(?:functions|infra|tests|scripts|benchmarks|docs|\.github|\.ci)"
    missing = [
        f"{md.relative_to(ROOT)}: {path}"
        for md in _markdown_files()
        for path in re.findall(rf"`({top}/[\w./-]*)`", md.read_text())
        if "*" not in path and not (ROOT / path.rstrip("/.")).exists()
    ]
    assert missing == []


def test_contributing_says_how_many_examples_each_hypothesis_profile_runs():
    from hypothesis import settings

    text = " ".join((ROOT / "CONTRIBUTING.md").read_text().split())
    quick, thorough = (settings.get_profile(p).max_examples for p in ("quick", "thorough"))
    assert f"on {quick} examples each, `HYPOTHESIS_PROFILE=quick`" in text
    assert f"CI on {thorough}, the `thorough` profile" in text
