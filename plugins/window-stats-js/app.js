// window-stats in JavaScript: count, mean, min and max of one numeric field
// per key and window — the same job and the same accumulator
// (`window-stats` v1, JSON {count, sum, min, max}) as the Rust and Python
// plugins, so any language's fold pairs with any language's format.
//
// It exports the `aggregator` world of `weir:stream@0.2.0` (wit/stream.wit)
// directly, as componentize-js maps it: interfaces are objects, records are
// objects with camelCase fields, `list<f64>` is a Float64Array, `list<u8>` a
// Uint8Array, s64/u64 are BigInt, and a thrown string is a `result` error.
// Built by `scripts/build-plugins.sh` (componentize-js from npm, cached).
//
// The host decodes the JSON, keys and times the events (see
// examples/seed-002-min-max-mean/js.toml). Config: `value_field` (default
// "temp").

const ACCUMULATOR = { name: "window-stats", version: 1 };
const config = { valueField: "temp" };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function configure(text) {
  let parsed = {};
  if (text.trim() !== "") {
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw `config: not JSON: ${err.message}`;
    }
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw "config: expected a JSON object";
  }
  for (const [name, value] of Object.entries(parsed)) {
    if (name !== "value_field") {
      throw `unknown field \`${name}\`, expected \`value_field\``;
    }
    if (typeof value !== "string" || value === "") {
      throw "`value_field` must name a field";
    }
    config.valueField = value;
  }
}

function readAcc(bytes) {
  return JSON.parse(decoder.decode(bytes));
}

function writeAcc(acc) {
  return encoder.encode(JSON.stringify(acc));
}

// The value column the fold reads; the host has checked its type against
// `reads()` before the first call, so anything else is a host bug.
function valueColumn(events) {
  const field = events.fields.find((f) => f.name === config.valueField);
  if (field === undefined || field.values.tag !== "floats") {
    throw new Error(`field \`${config.valueField}\` is not a float column`);
  }
  return field.values.val;
}

export const fold = {
  configure,

  reads() {
    return {
      name: "window-stats",
      version: 1,
      fields: [{ name: config.valueField, type: "float", optional: false }],
    };
  },

  accumulator() {
    return ACCUMULATOR;
  },

  // Each group is one (key, window) run of events [previous end, end).
  fold({ groups, events }) {
    const values = valueColumn(events);
    const accs = [];
    let start = 0;
    for (const group of groups) {
      const acc = group.acc === undefined || group.acc === null
        ? { count: 0, sum: 0, min: 0, max: 0 }
        : readAcc(group.acc);
      for (let i = start; i < group.end; i++) {
        const v = values[i];
        if (acc.count === 0) {
          acc.min = v;
          acc.max = v;
        } else {
          if (v < acc.min) acc.min = v;
          if (v > acc.max) acc.max = v;
        }
        acc.count += 1;
        acc.sum += v;
      }
      accs.push(writeAcc(acc));
      start = group.end;
    }
    return { accs, failures: [] };
  },

  migrate(from, _accs) {
    throw `cannot read accumulators \`${from.name} v${from.version}\`: this plugin writes \`window-stats v1\``;
  },
};

// A float as serde_json writes an f64: integral values keep a `.0`.
function float(v) {
  return Number.isInteger(v) && Math.abs(v) < 1e16 ? v.toFixed(1) : JSON.stringify(v);
}

// Microseconds since the epoch as RFC 3339 in UTC, the fraction only when
// not zero (as the Rust and Python SDKs write it).
function rfc3339(micros) {
  const seconds = micros / 1000000n - (micros % 1000000n < 0n ? 1n : 0n);
  const fraction = micros - seconds * 1000000n;
  const text = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  if (fraction === 0n) return `${text}Z`;
  return `${text}.${fraction.toString().padStart(6, "0").replace(/0+$/, "")}Z`;
}

export const format = {
  configure,

  accumulator() {
    return ACCUMULATOR;
  },

  // One JSON object per window, in the Rust plugin's field order and
  // number formatting, so the outputs are equal byte for byte.
  format(windows) {
    const objects = [];
    const failures = [];
    windows.forEach((w, index) => {
      try {
        const acc = readAcc(w.acc);
        if (acc.count === 0) throw "empty window";
        objects.push(
          `{"key":${JSON.stringify(w.key)},"start":"${rfc3339(w.start)}","end":"${rfc3339(w.end)}",` +
            `"count":${acc.count},"mean":${float(acc.sum / acc.count)},"min":${float(acc.min)},"max":${float(acc.max)}}`,
        );
      } catch (err) {
        objects.push("");
        failures.push({ index, reason: typeof err === "string" ? err : `${err.name}: ${err.message}` });
      }
    });
    return { objects, failures };
  },
};
