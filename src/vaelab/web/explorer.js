// vaelab latent-space explorer: runs the embedded decoder in plain JavaScript.
// The data block holds the decoder as a list of layers (weights in base64), or, for a decoder
// the page cannot run, its decodings precomputed on a grid over the map; the test set's latent
// means with their labels; and the map's axes in latent space.
"use strict";

(function () {
  const DATA = JSON.parse(document.getElementById("explorer-data").textContent);
  const Z_DIM = DATA.model.z_dim;
  const [CHANNELS, HEIGHT, WIDTH] = DATA.decoder.output_shape;
  const N_PIXELS = CHANNELS * HEIGHT * WIDTH;
  // Matplotlib's tab10, so the page matches the project's static figures.
  const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const UNLABELLED = "#3b5b92";  // the one colour of points without labels

  // ---- decoding the embedded tensors --------------------------------------------------------

  function base64Bytes(text) {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  let halfTable = null;  // all 65536 float16 values as float32, built on first use
  function float16Table() {
    if (halfTable) return halfTable;
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const exponent = (h >> 10) & 0x1f;
      const fraction = h & 0x3ff;
      if (exponent === 0) halfTable[h] = sign * fraction * Math.pow(2, -24);
      else if (exponent === 31) halfTable[h] = fraction ? NaN : sign * Infinity;
      else halfTable[h] = sign * (1 + fraction / 1024) * Math.pow(2, exponent - 15);
    }
    return halfTable;
  }

  // The stored bytes are little-endian, as are the typed arrays of every browser engine.
  function readTensor(entry) {
    const bytes = base64Bytes(entry.data);
    const count = entry.shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(count);
    if (entry.dtype === "float32") {
      out.set(new Float32Array(bytes.buffer, 0, count));
    } else if (entry.dtype === "float16") {
      const table = float16Table();
      const half = new Uint16Array(bytes.buffer, 0, count);
      for (let i = 0; i < count; i++) out[i] = table[half[i]];
    } else if (entry.dtype === "int8") {
      const scale = new Float32Array(base64Bytes(entry.scale).buffer);
      const quantised = new Int8Array(bytes.buffer, 0, count);
      const perRow = count / entry.shape[0];
      for (let i = 0; i < count; i++) out[i] = quantised[i] * scale[Math.floor(i / perRow)];
    } else {
      throw new Error("unknown tensor encoding " + entry.dtype);
    }
    return out;
  }

  // ---- the decoder: each layer maps a Float32Array to a preallocated Float32Array ------------
  // (float32 sums differ from float64 by about 1e-6 here, far below the 1e-3 we promise.)

  function linearLayer(spec) {
    const nIn = spec.in, nOut = spec.out;
    const weight = readTensor(spec.weight);  // (out, in)
    // Stored input-major so each input adds one contiguous column; ReLU zeros are skipped.
    const columns = new Float32Array(nIn * nOut);
    for (let o = 0; o < nOut; o++) {
      for (let i = 0; i < nIn; i++) columns[i * nOut + o] = weight[o * nIn + i];
    }
    const bias = spec.bias ? readTensor(spec.bias) : new Float32Array(nOut);
    const out = new Float32Array(nOut);
    return function (x) {
      for (let o = 0; o < nOut; o++) out[o] = bias[o];
      for (let i = 0; i < nIn; i++) {
        const v = x[i];
        if (v === 0) continue;
        const offset = i * nOut;
        for (let o = 0; o < nOut; o++) out[o] += v * columns[offset + o];
      }
      return out;
    };
  }

  function convTranspose2dLayer(spec) {
    const [cIn, hIn, wIn] = spec.in_shape;
    const [cOut, hOut, wOut] = spec.out_shape;
    const [sh, sw] = spec.stride, [ph, pw] = spec.padding;
    const [, , kh, kw] = spec.weight.shape;
    const stored = readTensor(spec.weight);  // (out, in, kh, kw)
    const kernel = kh * kw;
    const weight = new Float32Array(stored.length);  // (in, out, kh, kw): one input's kernels together
    for (let co = 0; co < cOut; co++) {
      for (let ci = 0; ci < cIn; ci++) {
        for (let k = 0; k < kernel; k++) {
          weight[(ci * cOut + co) * kernel + k] = stored[(co * cIn + ci) * kernel + k];
        }
      }
    }
    const bias = spec.bias ? readTensor(spec.bias) : new Float32Array(cOut);
    const out = new Float32Array(cOut * hOut * wOut);
    const plane = hOut * wOut;
    return function (x) {
      for (let co = 0; co < cOut; co++) out.fill(bias[co], co * plane, (co + 1) * plane);
      // Scatter form: every input pixel adds its value times a kernel to each output map.
      for (let ci = 0; ci < cIn; ci++) {
        for (let iy = 0; iy < hIn; iy++) {
          // Kernel rows that land inside the output (the rest fall in the cropped padding).
          const y0 = iy * sh - ph;
          const kyFrom = Math.max(0, -y0), kyTo = Math.min(kh, hOut - y0);
          for (let ix = 0; ix < wIn; ix++) {
            const v = x[(ci * hIn + iy) * wIn + ix];
            if (v === 0) continue;
            const x0 = ix * sw - pw;
            const kxFrom = Math.max(0, -x0), kxTo = Math.min(kw, wOut - x0);
            for (let co = 0; co < cOut; co++) {
              const wBase = (ci * cOut + co) * kernel;
              const oBase = co * plane + y0 * wOut + x0;
              for (let ky = kyFrom; ky < kyTo; ky++) {
                const oRow = oBase + ky * wOut, wRow = wBase + ky * kw;
                for (let kx = kxFrom; kx < kxTo; kx++) out[oRow + kx] += v * weight[wRow + kx];
              }
            }
          }
        }
      }
      return out;
    };
  }

  function elementwise(fn) {
    return function () {
      return function (x) {
        for (let i = 0; i < x.length; i++) x[i] = fn(x[i]);
        return x;
      };
    };
  }

  const sigmoid = (v) => 1 / (1 + Math.exp(-v));
  const LAYER_BUILDERS = {
    linear: linearLayer,
    conv_transpose2d: convTranspose2dLayer,
    relu: elementwise((v) => (v > 0 ? v : 0)),
    tanh: elementwise(Math.tanh),
    sigmoid: elementwise(sigmoid),
    reshape: () => (x) => x,  // activations stay flat, in row-major order
  };

  function buildDecoder(layers) {
    const steps = layers.map((spec) => {
      const build = LAYER_BUILDERS[spec.op];
      if (!build) throw new Error("the page cannot run a " + spec.op + " layer");
      return build(spec);
    });
    const input = new Float32Array(Z_DIM);
    const probs = new Float64Array(N_PIXELS);
    // z (any array of Z_DIM numbers) -> pixel probabilities; the returned array is reused.
    return function decode(z) {
      for (let i = 0; i < Z_DIM; i++) input[i] = z[i];
      let x = input;
      for (const step of steps) x = step(x);
      for (let i = 0; i < N_PIXELS; i++) probs[i] = sigmoid(x[i]);
      return probs;
    };
  }

  // A decoder the page cannot run: the decodings at the centres of a grid over the map,
  // precomputed by PyTorch; a latent vector shows the cell its map position falls in.
  const GRID = DATA.decoder.kind === "grid" ? DATA.decoder.grid : null;
  // Beyond two latent dimensions the grid covers only the map's plane, so the page keeps the
  // latent vector on it: it always shows the decoding of exactly the vector it displays.
  const ON_PLANE = GRID !== null && Z_DIM > 2;

  function gridCell(z) {
    const [columns, rows] = GRID.steps;
    const [x0, x1, y0, y1] = GRID.extent;
    const [px, py] = latentToMap(z);
    const clamp = (v, n) => Math.min(n - 1, Math.max(0, Math.floor(v)));
    const column = clamp((px - x0) / (x1 - x0) * columns, columns);
    const row = rows === 1 ? 0 : clamp((y1 - py) / (y1 - y0) * rows, rows);  // row 0 is the top
    return row * columns + column;
  }

  function gridLatent(cell) {
    const [columns, rows] = GRID.steps;
    const [x0, x1, y0, y1] = GRID.extent;
    const px = x0 + (x1 - x0) * ((cell % columns) + 0.5) / columns;
    const py = y1 - (y1 - y0) * (Math.floor(cell / columns) + 0.5) / rows;
    return mapToLatent(px, py);
  }

  function buildGridDecoder(grid) {
    const images = base64Bytes(grid.images);
    const probs = new Float64Array(N_PIXELS);
    return function decode(z) {
      const offset = gridCell(z) * N_PIXELS;
      for (let i = 0; i < N_PIXELS; i++) probs[i] = images[offset + i] / 255;
      return probs;
    };
  }

  const decode = GRID ? buildGridDecoder(GRID) : buildDecoder(DATA.decoder.layers);

  // ---- latent data ----------------------------------------------------------------------------

  const L = DATA.latents;
  const N_POINTS = L.n;
  const means = (function () {
    const half = new Uint16Array(base64Bytes(L.means).buffer);
    const table = float16Table();
    const out = new Float32Array(half.length);
    for (let i = 0; i < half.length; i++) out[i] = table[half[i]];
    return out;
  })();
  const coords = new Float32Array(base64Bytes(L.coords).buffer);
  const labels = L.label_bytes === 2 ? new Uint16Array(base64Bytes(L.labels).buffer)
    : base64Bytes(L.labels);
  const classNames = DATA.class_names;  // empty for unlabelled data: one row, one colour

  function pointLatent(index) {
    return Array.from(means.subarray(index * Z_DIM, (index + 1) * Z_DIM));
  }

  // Map coordinates <-> latent vectors: z = mean + p @ basis (strip maps: z = p.x).
  function mapToLatent(px, py) {
    if (L.map_kind === "strip") return [px];
    const z = new Array(Z_DIM);
    for (let d = 0; d < Z_DIM; d++) z[d] = L.map_mean[d] + px * L.map_basis[0][d] + py * L.map_basis[1][d];
    return z;
  }

  function latentToMap(z) {
    if (L.map_kind === "strip") return [z[0], null];
    let px = 0, py = 0;
    for (let d = 0; d < Z_DIM; d++) {
      const centred = z[d] - L.map_mean[d];
      px += centred * L.map_basis[0][d];
      py += centred * L.map_basis[1][d];
    }
    return [px, py];
  }

  // ---- state and the main canvas --------------------------------------------------------------

  const state = {
    z: new Array(Z_DIM).fill(0),
    picks: [],  // indices of the test points picked for interpolation (0, 1 or 2)
    cursor: [0, 0],  // keyboard cursor on the map, in map coordinates
    manifold: false,
  };
  const timing = { total: 0, count: 0 };  // total: running mean of milliseconds per decode

  const digit = document.getElementById("digit");
  const digitContext = digit.getContext("2d", { willReadFrequently: true });  // tiny; read back by tests
  digit.width = WIDTH;
  digit.height = HEIGHT;
  const digitImage = digitContext.createImageData(WIDTH, HEIGHT);

  function paint(image, probs) {
    // The first channel is drawn as grey (the models here have one channel).
    const pixels = image.data;
    for (let i = 0; i < WIDTH * HEIGHT; i++) {
      const v = Math.round(probs[i] * 255);
      pixels[4 * i] = v; pixels[4 * i + 1] = v; pixels[4 * i + 2] = v; pixels[4 * i + 3] = 255;
    }
  }

  function render() {
    const start = performance.now();
    const probs = decode(state.z);
    const elapsed = performance.now() - start;
    timing.count += 1;
    // The first decodes run before the engine has compiled the loops; they are not counted.
    if (timing.count > 3) timing.total = timing.total ? 0.9 * timing.total + 0.1 * elapsed : elapsed;
    paint(digitImage, probs);
    digitContext.putImageData(digitImage, 0, 0);
    syncSliders();
    drawMap();
    if (timing.total && timing.count % 10 === 0) showSpeed();
  }

  function showSpeed() {
    if (GRID) return;  // a lookup, not a decoder: nothing to measure
    const ms = timing.total;
    const rate = ms > 0 ? Math.round(1000 / ms) : Infinity;
    document.getElementById("speed").textContent =
      "decoder: " + ms.toFixed(2) + " ms per image in this browser (about " + rate + " decodes/s)";
  }

  function setLatent(z) {
    const shown = ON_PLANE ? gridLatent(gridCell(z.map((v) => Number(v) || 0))) : z;
    for (let d = 0; d < Z_DIM; d++) state.z[d] = Number(shown[d]) || 0;
    render();
  }

  // ---- sliders --------------------------------------------------------------------------------

  const sliders = [];
  const outputs = [];

  function percent(value, low, high) {
    return (100 * (value - low) / (high - low)).toFixed(3) + "%";
  }

  function buildSliders() {
    const container = document.getElementById("sliders");
    for (let d = 0; d < Z_DIM; d++) {
      const low = L.slider_low[d], high = L.slider_high[d];
      const row = document.createElement("div");
      row.className = "slider-row";
      const label = document.createElement("label");
      label.htmlFor = "z" + (d + 1);
      label.textContent = "z" + (d + 1);
      const track = document.createElement("div");
      track.className = "track";
      const bands = document.createElement("div");
      bands.className = "bands";
      const band = document.createElement("div");
      band.className = "band";
      band.style.left = percent(L.data_low[d], low, high);
      band.style.width = percent(L.data_high[d] - L.data_low[d] + low, low, high);
      bands.appendChild(band);
      for (const sign of [-1, 1]) {
        const tick = document.createElement("div");
        tick.className = "tick";
        tick.style.left = percent(sign * L.prior_sigmas, low, high);
        bands.appendChild(tick);
      }
      const input = document.createElement("input");
      input.type = "range";
      input.id = "z" + (d + 1);
      input.min = String(low);
      input.max = String(high);
      input.step = "0.01";
      input.value = "0";
      input.setAttribute("aria-describedby", "slider-heading");
      input.disabled = ON_PLANE;  // the grid holds no decodings off the map's plane
      input.addEventListener("input", () => {
        state.z[d] = Number(input.value);
        render();
      });
      const output = document.createElement("output");
      output.htmlFor = input.id;
      track.append(bands, input);
      row.append(label, track, output);
      container.appendChild(row);
      sliders.push(input);
      outputs.push(output);
    }
  }

  function syncSliders() {
    for (let d = 0; d < Z_DIM; d++) {
      const text = state.z[d].toFixed(2);
      if (Math.abs(Number(sliders[d].value) - state.z[d]) > 0.005) sliders[d].value = text;
      outputs[d].value = text;
    }
  }

  // ---- the map --------------------------------------------------------------------------------

  const mapCanvas = document.getElementById("map");
  const mapContext = mapCanvas.getContext("2d");
  const N_ROWS = Math.max(classNames.length, 1);
  const MARGIN = 10;  // CSS pixels between the plot area and the canvas edge

  // The map's extent, as vaelab computed it (the points, and [-5, 5] where the manifold can be
  // shown); a strip map's rows are the labels.
  const extent = (function () {
    const [x0, x1, y0, y1] = L.map_extent;
    if (L.map_kind === "strip") return { x0: x0, x1: x1, y0: -0.5, y1: N_ROWS - 0.5 };
    return { x0: x0, x1: x1, y0: y0, y1: y1 };
  })();

  // A fixed vertical spread per point on strip maps, so points of one label do not overlap.
  function jitter(i) {
    const h = Math.sin(i * 12.9898) * 43758.5453;
    return (h - Math.floor(h) - 0.5) * 0.7;
  }

  function plotSize() {
    const rect = mapCanvas.getBoundingClientRect();
    return { width: rect.width - 2 * MARGIN, height: rect.height - 2 * MARGIN };
  }

  // Map coordinates -> CSS pixels in the canvas; strip maps put label 0 on the top row.
  function toPixel(px, py) {
    const size = plotSize();
    const x = MARGIN + (px - extent.x0) / (extent.x1 - extent.x0) * size.width;
    const t = (py - extent.y0) / (extent.y1 - extent.y0);
    const y = MARGIN + (L.map_kind === "strip" ? t : 1 - t) * size.height;
    return [x, y];
  }

  function fromPixel(x, y) {
    const size = plotSize();
    const px = extent.x0 + (x - MARGIN) / size.width * (extent.x1 - extent.x0);
    const t = (y - MARGIN) / size.height;
    const py = extent.y0 + (L.map_kind === "strip" ? t : 1 - t) * (extent.y1 - extent.y0);
    return [px, py];
  }

  function pointPixel(i) {
    const y = coords[2 * i + 1] + (L.map_kind === "strip" ? jitter(i) : 0);
    return toPixel(coords[2 * i], y);
  }

  let manifoldTiles = null;  // an offscreen canvas of decoded images over [-5, 5], or the grid

  // Where the manifold is drawn, in map coordinates: [-5, 5] (or the whole grid).
  function manifoldBox() {
    if (GRID) {
      const [x0, x1, y0, y1] = GRID.extent;
      return L.map_kind === "strip" ? [x0, extent.y1, x1, extent.y0] : [x0, y1, x1, y0];
    }
    const limit = L.manifold_limit;
    return L.map_kind === "dims" ? [-limit, limit, limit, -limit]
      : [-limit, extent.y1, limit, extent.y0];
  }

  function buildGridTiles() {
    const [columns, rows] = GRID.steps;
    const tiles = document.createElement("canvas");
    tiles.width = columns * WIDTH;
    tiles.height = rows * HEIGHT;
    const context = tiles.getContext("2d");
    const image = context.createImageData(WIDTH, HEIGHT);
    for (let cell = 0; cell < columns * rows; cell++) {
      paint(image, decode(gridLatent(cell)));
      context.putImageData(image, (cell % columns) * WIDTH, Math.floor(cell / columns) * HEIGHT);
    }
    return tiles;
  }

  function buildManifold() {
    if (GRID) return buildGridTiles();
    const limit = L.manifold_limit;
    const steps = 15;
    const rows = L.map_kind === "dims" ? steps : 1;
    const tiles = document.createElement("canvas");
    tiles.width = steps * WIDTH;
    tiles.height = rows * HEIGHT;
    const context = tiles.getContext("2d");
    const image = context.createImageData(WIDTH, HEIGHT);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < steps; c++) {
        const zx = -limit + (2 * limit) * (c + 0.5) / steps;
        const zy = limit - (2 * limit) * (r + 0.5) / rows;  // top row is the largest z2
        paint(image, decode(L.map_kind === "dims" ? [zx, zy] : [zx]));
        context.putImageData(image, c * WIDTH, r * HEIGHT);
      }
    }
    return tiles;
  }

  function resizeMap() {
    const ratio = window.devicePixelRatio || 1;
    const rect = mapCanvas.getBoundingClientRect();
    mapCanvas.width = Math.max(1, Math.round(rect.width * ratio));
    mapCanvas.height = Math.max(1, Math.round(rect.height * ratio));
    drawMap();
  }

  function drawMap() {
    const ratio = mapCanvas.width / (mapCanvas.getBoundingClientRect().width || 1);
    const ctx = mapContext;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    const rect = mapCanvas.getBoundingClientRect();
    ctx.clearRect(0, 0, rect.width, rect.height);
    if (state.manifold && manifoldTiles) {
      const [bx0, by0, bx1, by1] = manifoldBox();
      const [left, top] = toPixel(bx0, by0);
      const [right, bottom] = toPixel(bx1, by1);
      ctx.imageSmoothingEnabled = false;
      ctx.globalAlpha = 0.85;
      ctx.drawImage(manifoldTiles, left, Math.min(top, bottom), right - left, Math.abs(bottom - top));
      ctx.globalAlpha = 1;
    }
    // Axes through the origin.
    ctx.strokeStyle = state.manifold ? "#555" : "#e2e5eb";
    ctx.lineWidth = 1;
    const [ox, oy] = toPixel(0, L.map_kind === "strip" ? extent.y0 : 0);
    ctx.beginPath();
    ctx.moveTo(ox, MARGIN); ctx.lineTo(ox, rect.height - MARGIN);
    if (L.map_kind !== "strip") { ctx.moveTo(MARGIN, oy); ctx.lineTo(rect.width - MARGIN, oy); }
    ctx.stroke();
    // Test points, coloured by label.
    const radius = rect.width < 420 ? 1.8 : 2.4;
    ctx.globalAlpha = state.manifold ? 0.9 : 0.75;
    for (let i = 0; i < N_POINTS; i++) {
      const [x, y] = pointPixel(i);
      ctx.fillStyle = L.labelled === false ? UNLABELLED : COLOURS[labels[i] % COLOURS.length];
      ctx.beginPath();
      ctx.arc(x, y, radius, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.globalAlpha = 1;
    // Picked points and the interpolation path between them.
    // Drawn twice, wide white under narrow black, so they show on the manifold as well.
    for (const [colour, width] of [["#fff", 4], ["#111", 2]]) {
      ctx.strokeStyle = colour; ctx.lineWidth = width;
      if (state.picks.length === 2) {
        const [a, b] = state.picks.map(pointPixel);
        ctx.setLineDash([5, 4]);
        ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
        ctx.setLineDash([]);
      }
      for (const index of state.picks) {
        const [x, y] = pointPixel(index);
        ctx.beginPath(); ctx.arc(x, y, 7, 0, 2 * Math.PI); ctx.stroke();
      }
    }
    // The current latent vector, projected onto the map.
    const [cx, cy] = latentToMap(state.z);
    const [x, y] = toPixel(cx, cy === null ? extent.y0 : cy);
    for (const [colour, width] of [["#fff", 4], ["#000", 2]]) {
      ctx.strokeStyle = colour; ctx.lineWidth = width;
      ctx.beginPath();
      if (cy === null) {
        ctx.moveTo(x, MARGIN); ctx.lineTo(x, rect.height - MARGIN);
      } else {
        ctx.moveTo(x - 9, y); ctx.lineTo(x + 9, y); ctx.moveTo(x, y - 9); ctx.lineTo(x, y + 9);
      }
      ctx.stroke();
    }
    if (document.activeElement === mapCanvas) {
      const [kx, ky] = toPixel(state.cursor[0], state.cursor[1]);
      ctx.strokeStyle = "#f5a623"; ctx.lineWidth = 2;
      ctx.strokeRect(kx - 6, ky - 6, 12, 12);
    }
  }

  function nearestPoint(x, y, maxDistance) {
    let best = -1, bestDistance = maxDistance * maxDistance;
    for (let i = 0; i < N_POINTS; i++) {
      const [px, py] = pointPixel(i);
      const distance = (px - x) * (px - x) + (py - y) * (py - y);
      if (distance < bestDistance) { best = i; bestDistance = distance; }
    }
    return best;
  }

  function decodeMapPixel(x, y) {
    const [px, py] = fromPixel(x, y);
    state.cursor = [px, py];
    setLatent(mapToLatent(px, py));
  }

  function describe(index) {
    if (L.labelled === false) return "test image " + (index + 1);
    return "test image " + (index + 1) + " (" + classNames[labels[index]] + ")";
  }

  function pick(index) {
    if (state.picks.length === 2) state.picks = [];
    state.picks.push(index);
    setLatent(pointLatent(index));
    const status = document.getElementById("map-status");
    if (state.picks.length === 2) {
      showInterpolation();
      status.textContent = "picked " + describe(index) + "; interpolation shown";
    } else {
      document.getElementById("interpolation").hidden = true;
      status.textContent = "picked " + describe(index) + "; pick a second point to interpolate";
    }
  }

  // ---- interpolation strip -------------------------------------------------------------------

  const FRAMES = 10;

  function showInterpolation() {
    const [a, b] = state.picks.map(pointLatent);
    const strip = document.getElementById("strip");
    strip.replaceChildren();
    for (let f = 0; f < FRAMES; f++) {
      const t = f / (FRAMES - 1);
      const z = a.map((v, d) => (1 - t) * v + t * b[d]);
      const canvas = document.createElement("canvas");
      canvas.width = WIDTH; canvas.height = HEIGHT;
      const context = canvas.getContext("2d");
      const image = context.createImageData(WIDTH, HEIGHT);
      paint(image, decode(z));
      context.putImageData(image, 0, 0);
      const button = document.createElement("button");
      button.type = "button";
      button.setAttribute("aria-label", "frame " + (f + 1) + " of " + FRAMES + " (t = " + t.toFixed(2) + ")");
      button.setAttribute("aria-pressed", "false");
      button.appendChild(canvas);
      button.addEventListener("click", () => {
        for (const other of strip.children) other.setAttribute("aria-pressed", "false");
        button.setAttribute("aria-pressed", "true");
        setLatent(z);
      });
      strip.appendChild(button);
    }
    document.getElementById("interpolation-caption").textContent =
      "from " + describe(state.picks[0]) + " to " + describe(state.picks[1]) +
      ", linear in latent space" +
      (GRID ? ", each frame the precomputed decoding nearest to it" : "") +
      "; choose a frame to load it";
    document.getElementById("interpolation").hidden = false;
  }

  // ---- events ---------------------------------------------------------------------------------

  function localPosition(event) {
    const rect = mapCanvas.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  }

  let press = null;  // where a pointer went down on the map, to tell clicks from drags
  mapCanvas.addEventListener("pointerdown", (event) => {
    const [x, y] = localPosition(event);
    press = { x: x, y: y, moved: false };
    mapCanvas.setPointerCapture(event.pointerId);
    decodeMapPixel(x, y);
  });
  mapCanvas.addEventListener("pointermove", (event) => {
    const [x, y] = localPosition(event);
    if (press && Math.hypot(x - press.x, y - press.y) > 4) press.moved = true;
    if (press || event.pointerType === "mouse") decodeMapPixel(x, y);  // drag, or hover
  });
  mapCanvas.addEventListener("pointerup", (event) => {
    const [x, y] = localPosition(event);
    if (press && !press.moved) {
      const index = nearestPoint(x, y, 10);
      if (index >= 0) pick(index);
    }
    press = null;
  });
  mapCanvas.addEventListener("pointercancel", () => { press = null; });

  mapCanvas.addEventListener("keydown", (event) => {
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
    if (moves[event.key]) {
      const fraction = event.shiftKey ? 0.1 : 0.02;
      const [dx, dy] = moves[event.key];
      const flip = L.map_kind === "strip" ? -1 : 1;  // strip rows run downwards
      const px = Math.min(extent.x1, Math.max(extent.x0, state.cursor[0] + dx * fraction * (extent.x1 - extent.x0)));
      const py = Math.min(extent.y1, Math.max(extent.y0, state.cursor[1] + flip * dy * fraction * (extent.y1 - extent.y0)));
      state.cursor = [px, py];
      setLatent(mapToLatent(px, py));
      document.getElementById("map-status").textContent =
        "map point " + px.toFixed(2) + ", " + py.toFixed(2);
      event.preventDefault();
    } else if (event.key === "Enter" || event.key === " ") {
      const [x, y] = toPixel(state.cursor[0], state.cursor[1]);
      const index = nearestPoint(x, y, Infinity);
      if (index >= 0) pick(index);
      event.preventDefault();
    } else if (event.key === "Escape") {
      state.picks = [];
      document.getElementById("interpolation").hidden = true;
      document.getElementById("map-status").textContent = "picks cleared";
      drawMap();
    }
  });
  mapCanvas.addEventListener("focus", () => {
    if (L.map_kind === "strip") state.cursor = [state.z[0], (N_ROWS - 1) / 2];
    else state.cursor = latentToMap(state.z);
    drawMap();
  });
  mapCanvas.addEventListener("blur", drawMap);

  document.getElementById("reset").addEventListener("click", () => setLatent(new Array(Z_DIM).fill(0)));

  function standardNormal() {
    // Box-Muller; 1 - random() avoids log(0).
    const u = 1 - Math.random(), v = Math.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  document.getElementById("random").addEventListener("click", () => {
    setLatent(Array.from({ length: Z_DIM }, standardNormal));
  });

  const manifoldCheck = document.getElementById("manifold");
  if (L.manifold_limit || GRID) {
    document.getElementById("manifold-option").hidden = false;
    if (GRID) {
      document.getElementById("manifold-text").textContent =
        "show the precomputed decodings behind the points";
    }
    manifoldCheck.addEventListener("change", () => {
      state.manifold = manifoldCheck.checked;
      if (state.manifold && !manifoldTiles) manifoldTiles = buildManifold();
      drawMap();
    });
  }

  // ---- page text ------------------------------------------------------------------------------

  function fillText() {
    const m = DATA.model, d = DATA.decoder;
    if (GRID) {
      const [columns, rows] = GRID.steps;
      const cells = rows > 1 ? columns + " × " + rows : String(columns);
      document.getElementById("model-info").textContent =
        m.title + " (" + m.run + "/" + m.checkpoint + "). This page cannot run the model's " +
        "decoder (it uses " + d.reason + "), so it holds " + cells + " decodings computed by " +
        "PyTorch at the centres of a grid over the map" +
        (ON_PLANE ? ", on the plane of the map's two axes" : "") +
        ", and shows the one nearest to each point; largest pixel difference from PyTorch at " +
        "the grid points: " + d.max_abs_error.toExponential(1) + "." +
        (ON_PLANE ? " The sliders show the latent vector of that grid point." : "");
      document.getElementById("speed").textContent = "";
      document.getElementById("random").hidden = ON_PLANE;
    } else {
      document.getElementById("model-info").textContent =
        m.title + " (" + m.run + "/" + m.checkpoint + "). Decoder of " +
        d.n_weights.toLocaleString("en") + " weights stored as " + d.encoding +
        ", runs in this page; largest pixel difference from PyTorch: " +
        d.max_abs_error.toExponential(1) + ".";
    }
    const captions = {
      dims: "The test set's latent means (z1 across, z2 up), " + N_POINTS + " images.",
      strip: "The test set's latent means (z1 across), " +
        (L.labelled === false ? "unlabelled, " : "one row per label, ") + N_POINTS + " images.",
      pca: "The test set's latent means projected on their two principal components (" +
        (100 * L.explained[0]).toFixed(0) + "% and " + (100 * L.explained[1]).toFixed(0) +
        "% of their variance), " + N_POINTS + " images. A map point decodes the latent vector " +
        "on that plane.",
    };
    document.getElementById("map-caption").textContent = captions[L.map_kind];
    const legend = document.getElementById("legend");
    classNames.forEach((name, index) => {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = COLOURS[index % COLOURS.length];
      item.append(swatch, document.createTextNode(name));
      legend.appendChild(item);
    });
  }

  // ---- start ----------------------------------------------------------------------------------

  fillText();
  buildSliders();
  new ResizeObserver(resizeMap).observe(mapCanvas);
  resizeMap();
  render();

  // A small interface for tests and for measuring speed from the console.
  window.vaelabExplorer = {
    zDim: Z_DIM,
    decode: (z) => Array.from(decode(z)),
    setLatent: (z) => setLatent(z),
    latent: () => state.z.slice(),
    nPoints: N_POINTS,
    pointLatent: (index) => pointLatent(index),
    pointPosition: (index) => pointPixel(index),  // CSS pixels from the map's top-left corner
    canvasPixels: () => {
      const pixels = digitContext.getImageData(0, 0, WIDTH, HEIGHT).data;
      return Array.from({ length: WIDTH * HEIGHT }, (_, i) => pixels[4 * i]);
    },
    benchmark: (milliseconds) => {
      const z = Array.from({ length: Z_DIM }, standardNormal);
      let count = 0;
      const start = performance.now();
      let elapsed = 0;
      while (elapsed < milliseconds) {
        z[count % Z_DIM] = standardNormal();
        decode(z);
        count += 1;
        elapsed = performance.now() - start;
      }
      return { decodes: count, seconds: elapsed / 1000, perSecond: count / (elapsed / 1000) };
    },
  };
})();
