#!/usr/bin/env bash
# The forwarding unit (routed calls) under `webcall-bench sfu`: a room of
# synthetic participants (str0m peers on loopback), each sending Opus and three
# VP8 simulcast layers (150/500/1500 kbit/s at 25 frames/s) and receiving every
# other's video at one layer. Two series:
#
#   1. ten participants, receivers at each layer (q, h, f), ROUNDS rounds each;
#   2. room sizes SIZES at layer h, once each: the largest room the one engine
#      thread holds without loss.
#
#   cargo build --release -p webcall-bench
#   bench/sfu.sh [-n ROUNDS] [SIZES...]     (default: 3 rounds; sizes 10 15 20 25 30)
#
# Per run: forwarded packets/s and Mbit/s, the SFU thread's CPU (its own
# schedstat: the clients' work is not in it), microseconds of that CPU per
# forwarded packet, the video frames received (% of those sent to be
# forwarded), and the time through the server (publisher's last datagram of a
# frame leaving -> the receiver's datagram completing it arriving).
set -euo pipefail

rounds=3
if [[ "${1:-}" == "-n" ]]; then
    rounds=$2
    shift 2
fi
sizes=("$@")
[[ ${#sizes[@]} -gt 0 ]] || sizes=(10 15 20 25 30)
root=$(cd "$(dirname "$0")/.." && pwd)
tool="$root/target/release/webcall-bench"
[[ -x "$tool" ]] || { echo "build it first: cargo build --release -p webcall-bench" >&2; exit 1; }

row() {
    python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
t = d["through_server"]
video = 100.0 * sum(d["video_frames_by_layer"]) / max(d["video_frames_expected"], 1)
print("| %d | %s | %.0f | %.1f | %.1f %% | %.1f | %.1f %% %s | %.2f | %.2f |" % (
    d["participants"], d["layer"], d["forwarded_packets_per_s"], d["forwarded_mbit_per_s"],
    100 * d["server_cpu_cores"], d["server_cpu_us_per_packet"], min(video, 100.0),
    d["video_frames_by_layer"], t["p50_ms"], t["p99_ms"]))'
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| people | layer | packets/s | Mbit/s | SFU thread CPU | µs/packet | video received (q,h,f) | p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|---|---|---|"
for _ in $(seq 1 "$rounds"); do
    for layer in q h f; do
        "$tool" sfu --publishers 10 --layer "$layer" | tail -n 1 | row
    done
done
for n in "${sizes[@]}"; do
    "$tool" sfu --publishers "$n" --layer h | tail -n 1 | row
done
