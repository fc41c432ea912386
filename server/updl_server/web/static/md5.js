// The page's side of the MD5 worker: one worker per file, ended when its digest is known.

const WORKER_URL = "/web/md5-worker.js";

/**
 * Resolve to the hex MD5 of `blob`; `onProgress(done, total)` as slices are hashed. An abort
 * of `signal` ends the worker and rejects with an `AbortError`.
 */
export function md5Of(blob, onProgress = () => {}, signal = undefined) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) { reject(new DOMException("cancelled", "AbortError")); return; }
    const worker = new Worker(WORKER_URL);
    const stop = () => finish(reject, new DOMException("cancelled", "AbortError"));
    const finish = (fn, value) => {
      worker.terminate();
      if (signal) signal.removeEventListener("abort", stop);
      fn(value);
    };
    if (signal) signal.addEventListener("abort", stop);
    worker.onmessage = (event) => {
      const msg = event.data;
      if (msg.type === "progress") onProgress(msg.done, msg.total);
      else if (msg.type === "done") finish(resolve, msg.md5);
      else finish(reject, new Error(`cannot read the file: ${msg.message}`));
    };
    worker.onerror = (event) => {
      event.preventDefault();
      finish(reject, new Error(`the MD5 worker failed: ${event.message || "unknown error"}`));
    };
    worker.postMessage({ blob });
  });
}
