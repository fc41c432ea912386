// Text for people: sizes, rates, durations, times.

const UNITS = ["KiB", "MiB", "GiB", "TiB", "PiB"];

/**
 * `1234567` → `"1.2 MiB"`: binary (IEC) units with one decimal, the one size format of updl
 * (the CLI, the SDK's bars and the server's limits say the same).
 */
export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** Seconds → `"45 s"`, `"3 min 05 s"`, `"2 h 07 min"`. */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** An API time (ISO 8601 UTC) in the user's locale. */
export function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

/**
 * Speed and time left from absolute byte counts: a rate over the last few seconds, so a
 * stall shows quickly and one fast burst does not promise too much.
 */
export class RateMeter {
  constructor(windowMs = 3000) { this.windowMs = windowMs; this.samples = []; }

  /** Record `done` bytes at this moment; return `{rate, left}` (bytes/s, seconds) or null. */
  update(done, total) {
    const now = performance.now();
    this.samples.push([now, done]);
    while (this.samples.length > 2 && now - this.samples[0][0] > this.windowMs) this.samples.shift();
    const [t0, d0] = this.samples[0];
    if (now - t0 < 250 || done <= d0) return null;
    const rate = ((done - d0) * 1000) / (now - t0);
    return { rate, left: (total - done) / rate };
  }
}
