"""Writes the side-by-side benchmark's input: N JSON telemetry lines
(~85 bytes each) over K devices, 10 ms apart in event time from
2020-01-01T00:00:00Z, temperatures on a seeded random walk.

    python3 generate.py OUT.jsonl [N=1000000] [K=100]
"""

import json
import random
import sys

START = 1577836800.0  # 2020-01-01T00:00:00Z


def main():
    out = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    keys = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    rng = random.Random(7)
    temps = [rng.uniform(15.0, 25.0) for _ in range(keys)]
    with open(out, "w") as f:
        for i in range(count):
            k = rng.randrange(keys)
            temps[k] += rng.uniform(-0.5, 0.5)
            row = {"device": f"dev-{k:06d}", "temp": round(temps[k], 3), "humidity": round(rng.uniform(40, 60), 1), "ts": round(START + i * 0.01, 3)}
            f.write(json.dumps(row, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
