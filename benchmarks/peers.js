// The sharp engines of the peers benchmark (benchmarks/peers.py starts this worker): one JSON
// request a line on stdin ({engine, path, sizes, quality, effort, keep}), one JSON answer a
// line on stdout ({cpu_ms, wall_ms, added, outputs: [[width, height, bytes]], largest}).
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const readline = require("readline");
const sharp = require("sharp");

sharp.cache(false); // a cached result would time nothing
sharp.concurrency(1); // one libvips thread (and UV_THREADPOOL_SIZE=1 from peers.py)

const inside = (width, height) => ({ width, height, fit: "inside", withoutEnlargement: true });

// Firebase's storage-resize-images (firebase/extensions, storage-resize-images/functions/src):
// per size, resize() in resize-image.ts keeps the input's format, convertType() in util.ts
// makes the WebP with OUTPUT_OPTIONS, then modifyImage() writes it with toFile(), which
// encodes it once more with sharp's defaults; the sizes start together (Promise.allSettled).
// IS_ANIMATED and OUTPUT_OPTIONS are set to our settings: false and {webp: {quality}}.
async function firebase(req) {
  const animated = false;
  return Promise.all(
    req.sizes.map(async ([width, height], index) => {
      const resized = await sharp(req.path, { failOnError: false, animated })
        .rotate()
        .resize(width, height, { fit: "inside", withoutEnlargement: true })
        .toBuffer();
      const webp = await sharp(resized, { animated }).webp({ quality: req.quality }).toBuffer();
      const file = path.join(os.tmpdir(), `peers-${process.pid}-${index}`);
      const info = await sharp(webp, { animated }).toFile(file);
      const data = fs.readFileSync(file);
      fs.unlinkSync(file);
      return [info.width, info.height, data];
    }),
  );
}

// One shrink-on-load decode to the largest box, kept as raw pixels; each smaller box is
// resized from the one before, as ours does.
async function sharpOnce(req) {
  const area = (i) => req.sizes[i][0] * req.sizes[i][1];
  const order = req.sizes.map((_, i) => i).sort((a, b) => area(b) - area(a));
  const outputs = [];
  let pixels = null;
  for (const i of order) {
    // The first from the file by shrink-on-load; each next at the size ours makes (req.exact):
    // a cascade rounds at each step, a box is fitted to the original.
    const [from, size] = pixels
      ? [sharp(pixels.data, { raw: pixels.info }), { width: req.exact[i][0], height: req.exact[i][1], fit: "fill" }]
      : [sharp(fs.readFileSync(req.path)).rotate(), inside(...req.sizes[i])];
    pixels = await from.resize(size).raw().toBuffer({ resolveWithObject: true });
    const webp = { quality: req.quality, effort: req.effort };
    const data = await sharp(pixels.data, { raw: pixels.info }).webp(webp).toBuffer();
    outputs[i] = [pixels.info.width, pixels.info.height, data];
  }
  return outputs;
}

const ENGINES = { firebase, sharp_once: sharpOnce };

const kib = (field) => Number(fs.readFileSync("/proc/self/status", "utf8").match(new RegExp(`${field}:\\s+(\\d+)`))[1]);

async function answer(req) {
  const before = kib("VmRSS");
  fs.writeFileSync("/proc/self/clear_refs", "5"); // peak RSS := RSS now
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  const outputs = await ENGINES[req.engine](req);
  const wall = performance.now() - t0;
  const used = process.cpuUsage(cpu);
  const largest = outputs.reduce((a, b) => (b[0] * b[1] > a[0] * a[1] ? b : a));
  return {
    cpu_ms: (used.user + used.system) / 1000,
    wall_ms: wall,
    added: (kib("VmHWM") - before) * 1024,
    outputs: outputs.map(([w, h, data]) => [w, h, data.length]),
    largest: req.keep ? largest[2].toString("base64") : null,
  };
}

(async () => {
  for await (const line of readline.createInterface({ input: process.stdin })) {
    let reply;
    try {
      reply = await answer(JSON.parse(line));
    } catch (err) {
      reply = { error: String(err.message || err).split("\n")[0] };
    }
    process.stdout.write(JSON.stringify(reply) + "\n");
  }
})();
