// The page's side of the MD5 worker: one worker per file, ended when its digest is known.

const WORKER_URL = "/web/md5-worker.js";

/** Resolve to the hex MD5 of `blob`; `onProgress(done, total)` as slices are hashed. */
export function md5Of(blob, onProgress = () => {}) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_URL);
    const finish = (fn, value) => { worker.terminate(); fn(value); };
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
