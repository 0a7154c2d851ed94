// The gallery page: polls /api/state once a second, redraws only when it changed, and
// uploads dropped or chosen files with POST /upload?name=... (raw body, no form parsing).
"use strict";

const POLL_MS = 1000;
let lastState = "";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function bytes(n) {
  if (n === null || n === undefined) return "?";
  n = Number(n);
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function preview(thumbnails) {
  // The smallest thumbnail that still fills the card, else the largest there is.
  const bySize = [...thumbnails].sort((a, b) => a.width * a.height - b.width * b.height);
  return bySize.find((t) => Math.max(t.width, t.height) >= 256) || bySize[bySize.length - 1];
}

function card(item) {
  const thumbs = item.thumbnails || [];
  const shown = thumbs.length ? preview(thumbs) : null;
  // A small PNG of the BlurHash (the server decodes it), painted at once.
  const blur = shown ? item.placeholderUrl : null;
  const colour = /^#[0-9a-f]{6}$/i.test(item.placeholder?.color) ? item.placeholder.color : null;
  // The placeholder is painted at once; the thumbnail covers it and removes it once loaded.
  const behind = blur ? el("div", { class: "blur", style: `background-image: url(${blur})` }) : null;
  const picture = shown
    ? el("img", {
      class: "thumb", src: shown.url, alt: `thumbnail of ${item.name}`,
      onload: () => behind?.remove(),
    })
    : el("span", { class: "placeholder" },
      { pending: "processing…", skipped: "not an image: skipped", unreadable: "unreadable record" }[item.status]
        || "no thumbnail");
  const facts = [
    `${bytes(item.size)}${item.contentType ? ` · ${item.contentType}` : ""}`,
    item.width ? `${item.width}×${item.height} ${item.format || ""}` : null,
    colour ? el("span", {}, el("span", { class: "swatch", style: `background: ${colour}` }),
      ` dominant ${colour}`) : null,
    item.latencyMs !== null && item.latencyMs !== undefined
      ? `latency ${Math.round(item.latencyMs)} ms` : null,
  ].filter(Boolean);
  return el("article", { class: "card", "data-name": item.name, "data-status": item.status },
    el("div", { class: "picture" }, behind, picture),
    el("div", { class: "body" },
      el("div", { class: "name", title: `generation ${item.generation ?? "?"}` }, item.name),
      el("span", { class: `badge status ${item.status}` }, item.status),
      item.reason
        ? el("div", { class: "reason" }, el("code", {}, item.reason),
          item.message ? `: ${item.message}` : "")
        : null,
      el("div", { class: "facts" }, ...facts.flatMap((f) => [f, el("br")])),
      thumbs.length
        ? el("div", { class: "sizes" }, ...thumbs.map((t) =>
          el("a", { href: t.url, target: "_blank", title: `${t.box || ""} ${bytes(t.size)} ${t.contentType}` },
            `${t.width}×${t.height}${(t.box || "").endsWith(":cover") ? " cover" : ""}`)))
        : null));
}

function render(state) {
  document.getElementById("where").textContent =
    `${state.project} · gs://${state.buckets.uploads} → gs://${state.buckets.thumbnails}`;
  const uploads = state.uploads;
  const byStatus = {};
  for (const item of uploads) byStatus[item.status] = (byStatus[item.status] || 0) + 1;
  document.getElementById("counts").textContent = Object.entries(byStatus)
    .map(([status, n]) => `${n} ${status}`).join(" · ");
  document.getElementById("uploads").replaceChildren(...uploads.map(card));
  document.getElementById("no-uploads").hidden = uploads.length > 0;

  const rows = state.deadLetters.map((d) =>
    el("tr", { "data-id": d.id },
      el("td", {}, el("code", {}, d.id)), el("td", {}, d.status),
      el("td", {}, d.subscription), el("td", {}, String(d.attempts ?? "")),
      el("td", {}, String(d.replays ?? 0)), el("td", {}, d.event), el("td", {}, d.reason)));
  if (!rows.length) rows.push(el("tr", {}, el("td", { class: "empty", colSpan: 7 }, "none")));
  document.querySelector("#dead-letters tbody").replaceChildren(...rows);
  document.getElementById("dl-count").textContent = String(state.deadLetters.length);
}

function setLive(ok, text) {
  const live = document.getElementById("live");
  live.className = `live ${ok ? "on" : "off"}`;
  live.textContent = text;
}

async function poll() {
  try {
    const response = await fetch("/api/state", { cache: "no-store" });
    const text = await response.text();
    if (!response.ok) throw new Error(JSON.parse(text).error || response.statusText);
    if (text !== lastState) {
      lastState = text;
      render(JSON.parse(text));
    }
    setLive(true, `live · ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    setLive(false, `stack unreachable: ${error.message}`);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

async function upload(file) {
  const line = el("li", {}, `uploading ${file.name}…`);
  document.getElementById("sent").prepend(line);
  try {
    const response = await fetch(`/upload?name=${encodeURIComponent(file.name)}`, {
      method: "POST",
      headers: { "Content-Type": file.type || "application/octet-stream" },
      body: file,
    });
    const result = await response.json();
    if (!response.ok) throw new Error(result.error || response.statusText);
    line.textContent = `uploaded ${result.name} (generation ${result.generation})`;
  } catch (error) {
    line.className = "error";
    line.textContent = `${file.name}: ${error.message}`;
  }
}

function setUpDrop() {
  const drop = document.getElementById("drop");
  const input = document.getElementById("file");
  input.addEventListener("change", () => {
    [...input.files].forEach(upload);
    input.value = "";
  });
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    [...event.dataTransfer.files].forEach(upload);
  });
}

setUpDrop();
poll();
