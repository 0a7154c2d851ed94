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

// BlurHash (https://blurha.sh): a DC colour and AC cosine coefficients, base83-encoded.
// Decoded here from the published algorithm to paint a card before its thumbnail loads.
const BASE83 =
  "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

function base83(text) {
  let value = 0;
  for (const char of text) {
    const digit = BASE83.indexOf(char);
    if (digit < 0) throw new Error(`not base83: ${char}`);
    value = value * 83 + digit;
  }
  return value;
}

function toLinear(channel) {
  const v = channel / 255;
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
}

function toSrgb(linear) {
  const v = Math.min(1, Math.max(0, linear));
  return Math.round((v <= 0.0031308 ? v * 12.92 : 1.055 * v ** (1 / 2.4) - 0.055) * 255);
}

// RGBA pixels (width x height) of a BlurHash; throws on a malformed one.
function decodeBlurhash(hash, width, height) {
  const flag = base83(hash[0]);
  const nx = (flag % 9) + 1;
  const ny = Math.floor(flag / 9) + 1;
  if (hash.length !== 4 + 2 * nx * ny) throw new Error("wrong length for its components");
  const maxAc = (base83(hash[1]) + 1) / 166;
  const dc = base83(hash.slice(2, 6));
  const colours = [[toLinear(dc >> 16), toLinear((dc >> 8) & 255), toLinear(dc & 255)]];
  for (let i = 1; i < nx * ny; i++) {
    const ac = base83(hash.slice(4 + 2 * i, 6 + 2 * i));
    colours.push([Math.floor(ac / 361), Math.floor(ac / 19) % 19, ac % 19].map((q) => {
      const v = (q - 9) / 9;
      return Math.sign(v) * v * v * maxAc;
    }));
  }
  const pixels = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const sum = [0, 0, 0];
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const basis = Math.cos((Math.PI * x * i) / width) * Math.cos((Math.PI * y * j) / height);
          const c = colours[i + j * nx];
          for (let k = 0; k < 3; k++) sum[k] += c[k] * basis;
        }
      }
      const at = 4 * (x + y * width);
      pixels.set([toSrgb(sum[0]), toSrgb(sum[1]), toSrgb(sum[2]), 255], at);
    }
  }
  return pixels;
}

const placeholderUrls = new Map(); // blurhash -> data URL, drawn once per page

// A small PNG data URL of the item's placeholder at its aspect, or null without one.
function placeholderUrl(placeholder) {
  if (!placeholder || typeof placeholder.blurhash !== "string") return null;
  if (!placeholderUrls.has(placeholder.blurhash)) {
    let url = null;
    try {
      const scale = 32 / Math.max(placeholder.width, placeholder.height);
      const width = Math.max(1, Math.round(placeholder.width * scale));
      const height = Math.max(1, Math.round(placeholder.height * scale));
      const canvas = el("canvas", { width, height });
      const pixels = decodeBlurhash(placeholder.blurhash, width, height);
      canvas.getContext("2d").putImageData(new ImageData(pixels, width, height), 0, 0);
      url = canvas.toDataURL();
    } catch (error) {
      console.warn(`placeholder of ${placeholder.blurhash}: ${error.message}`);
    }
    placeholderUrls.set(placeholder.blurhash, url);
  }
  return placeholderUrls.get(placeholder.blurhash);
}

function card(item) {
  const thumbs = item.thumbnails || [];
  const shown = thumbs.length ? preview(thumbs) : null;
  const blur = shown ? placeholderUrl(item.placeholder) : null;
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
