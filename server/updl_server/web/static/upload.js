// Uploads: each file's MD5 in a worker, then tus (resumable) with that MD5 in the creation
// metadata, so the server compares the whole file with it before it keeps anything.
//
// Resuming: tus-js-client remembers each upload's URL in localStorage under a fingerprint.
// Ours is the target name, size, modification time and MD5 (not tus-js-client's default of
// the file's name), so choosing the same file again for the same name resumes at the server's
// offset after a reload, a closed laptop or a lost network, while a changed file or another
// name starts afresh. The token is never stored there: only upload URLs.
/* global tus */
import { session } from "./api.js";
import { formatDuration, formatSize, RateMeter } from "./format.js";
import { md5Of } from "./md5.js";

const CHUNK_SIZE = 8 * 1024 * 1024; // one PATCH: what a reload can lose at most
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000]; // tus-js-client's retries, ms
const MAX_ATTEMPTS = 3; // whole uploads, each with a fresh MD5, after a checksum mismatch
const FINGERPRINT = ["updl", location.origin].join("|"); // + name, size, mtime, MD5 per file

/** Whether a tus error is the server's refusal of the MD5 (409 "checksum failed"). */
function isChecksumFailure(err) {
  const res = err && err.originalResponse;
  if (!res || res.getStatus() !== 409) return false;
  try { return "actual" in JSON.parse(res.getBody()); } catch { return false; }
}

/** The server's JSON message from a tus error, or tus-js-client's own text. */
function tusMessage(err) {
  const res = err && err.originalResponse;
  if (res) {
    try { return JSON.parse(res.getBody()).error || `HTTP ${res.getStatus()}`; } catch { /* */ }
    return `HTTP ${res.getStatus()}`;
  }
  return (err && err.message) || String(err);
}

/** tus-js-client's default retry rule, minus what retrying cannot fix. */
function shouldRetry(err) {
  const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
  if (isChecksumFailure(err)) return false; // handled here: hash again, upload again
  if ([400, 401, 403, 404, 413, 415, 431, 507].includes(status)) return false;
  return (status < 400 || status >= 500 || status === 409 || status === 423) && navigator.onLine;
}

/** One file in the upload list: its row in the page and what happened to it. */
class UploadItem {
  constructor(list, file, name) {
    this.file = file;
    this.name = name;
    this.meter = new RateMeter();
    this.row = document.createElement("li");
    this.row.className = "upload";
    this.row.dataset.name = name;
    this.row.dataset.state = "waiting";
    const head = document.createElement("div");
    head.className = "head";
    const title = document.createElement("span");
    title.className = "name";
    title.textContent = name;
    this.state = document.createElement("span");
    this.state.className = "state";
    // Cancel stops this file's upload; what the server has stays there, resumable.
    this.controller = new AbortController();
    this.cancelButton = document.createElement("button");
    this.cancelButton.type = "button";
    this.cancelButton.className = "cancel";
    this.cancelButton.textContent = "Cancel";
    this.cancelButton.setAttribute("aria-label", `Cancel the upload of ${name}`);
    this.cancelButton.addEventListener("click", () => this.controller.abort());
    this.serverOffset = null; // what the server holds of this file, once an upload exists
    head.append(title, this.state, this.cancelButton);
    this.bar = document.createElement("progress");
    this.bar.max = 1;
    this.bar.value = 0;
    this.bar.setAttribute("aria-label", `Progress of ${name}`);
    this.detail = document.createElement("div");
    this.detail.className = "detail";
    this.detail.setAttribute("aria-live", "polite");
    this.row.append(head, this.bar, this.detail);
    list.prepend(this.row);
    this.show("waiting", "Waiting", formatSize(file.size));
  }

  show(state, label, detail) {
    this.row.dataset.state = state;
    this.state.textContent = label;
    this.state.className = `state ${state === "done" ? "ok" : state === "failed" ? "bad" : ""}`;
    this.cancelButton.hidden = ["done", "failed", "cancelled"].includes(state);
    if (detail !== undefined) this.detail.textContent = detail;
  }

  /** Say that the upload stopped at the user's request, and how to resume it. */
  showCancelled() {
    const kept = this.serverOffset
      ? `The server keeps the ${formatSize(this.serverOffset)} it received: choose the same file `
        + "again, for the same folder, and the upload resumes from there."
      : "Choose the same file again, for the same folder, to upload it.";
    this.show("cancelled", "Cancelled", kept);
  }

  progress(label, done, total, note = "") {
    this.bar.max = total || 1;
    this.bar.value = total ? done : 1;
    const rate = this.meter.update(done, total);
    const parts = [`${formatSize(done)} of ${formatSize(total)}`];
    if (rate) parts.push(`${formatSize(rate.rate)}/s`, `${formatDuration(rate.left)} left`);
    this.show(this.row.dataset.state, label, (note ? `${note} · ` : "") + parts.join(" · "));
  }
}

/**
 * Send `file` as `name` over tus, the server checking `md5`; resolves `{md5}` or `{mismatch}`.
 * A cancel aborts the transfer without terminating the server's upload (its URL stays in
 * localStorage, so it resumes like one a reload interrupted) and rejects with an AbortError.
 */
function sendOnce(item, md5) {
  return new Promise((resolve, reject) => {
    const signal = item.controller.signal;
    if (signal.aborted) { reject(new DOMException("cancelled", "AbortError")); return; }
    let stored = null;
    let resumeNote = "";
    item.meter = new RateMeter();
    const fingerprint = [FINGERPRINT, item.name, item.file.size, item.file.lastModified, md5].join("|");
    const upload = new tus.Upload(item.file, {
      endpoint: `${location.origin}/tus/`,
      chunkSize: CHUNK_SIZE,
      retryDelays: RETRY_DELAYS,
      headers: { Authorization: `Bearer ${session.token}` },
      metadata: { name: item.name, md5 },
      fingerprint: async () => fingerprint,
      removeFingerprintOnSuccess: true,
      onShouldRetry: (err) => shouldRetry(err),
      onAfterResponse: (req, res) => {
        const status = res.getStatus();
        if (["HEAD", "PATCH"].includes(req.getMethod()) && status >= 200 && status < 300) {
          item.serverOffset = Number(res.getHeader("Upload-Offset"));
        }
        if (req.getMethod() === "POST" && status === 201) item.serverOffset = 0;
        if (req.getMethod() === "HEAD" && res.getStatus() === 200) {
          const offset = Number(res.getHeader("Upload-Offset"));
          item.row.dataset.resumedFrom = String(offset);
          resumeNote = `Resumed: the server already had ${formatSize(offset)} from an earlier attempt`;
          item.show("uploading", "Resuming", resumeNote);
        }
        if (req.getMethod() === "PATCH" && res.getStatus() === 204) {
          // What the server accepted from this page (not counting what it had before).
          const accepted = Number(res.getHeader("Upload-Offset")) - Number(req.getHeader("Upload-Offset"));
          item.row.dataset.sentBytes = String(Number(item.row.dataset.sentBytes || 0) + accepted);
        }
        const md5Header = res.getHeader("Upload-Md5");
        if (md5Header) stored = md5Header;
      },
      onProgress: (sent, total) => item.progress("Uploading", sent, total, resumeNote),
      onSuccess: () => resolve({ md5: stored || md5 }),
      onError: (err) => {
        if (!isChecksumFailure(err)) { reject(err); return; }
        forget(fingerprint); // the server dropped that upload: nothing there to resume
        resolve({ mismatch: true });
      },
    });
    signal.addEventListener("abort", () => {
      upload.abort(false); // false: no DELETE, the server keeps what it has
      reject(new DOMException("cancelled", "AbortError"));
    });
    upload.findPreviousUploads().then((previous) => {
      if (signal.aborted) return;
      if (previous.length > 0) upload.resumeFromPreviousUpload(previous[0]);
      item.show("uploading", "Uploading");
      upload.start();
    }, reject);
  });
}

/** Hash, send, and on a checksum mismatch hash and send again (the file may have changed). */
async function uploadItem(item) {
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
    const again = attempt > 1
      ? `The server's MD5 did not match; nothing was stored. Attempt ${attempt} of ${MAX_ATTEMPTS}: `
      : "";
    item.show("hashing", "Computing MD5");
    item.meter = new RateMeter();
    const md5 = await md5Of(item.file, (done, total) =>
      item.progress("Computing MD5", done, total, again.trim()), item.controller.signal);
    item.row.dataset.md5 = md5;
    const result = await sendOnce(item, md5);
    if (!result.mismatch) {
      item.bar.value = item.bar.max;
      item.show("done", "Stored", `${formatSize(item.file.size)} · MD5 ${result.md5} verified by the server`
        + (item.row.dataset.resumedFrom ? " · resumed" : ""));
      return true;
    }
    item.row.dataset.mismatches = String(attempt);
  }
  item.show("failed", "Failed", `The server refused the file ${MAX_ATTEMPTS} times: the MD5 of what `
    + "arrived never matched the MD5 computed here. Nothing was stored. Check the file and try again.");
  return false;
}

/**
 * Uploads this browser started here and did not finish (tus-js-client's localStorage
 * entries with our fingerprint): `[{name, size}]`, to tell the user what can resume.
 */
export function unfinishedUploads() {
  const found = new Map();
  for (let i = 0; i < localStorage.length; i += 1) {
    const key = localStorage.key(i);
    if (!key || !key.startsWith(`tus::${FINGERPRINT}|`)) continue;
    try {
      const entry = JSON.parse(localStorage.getItem(key));
      if (entry && entry.metadata && entry.metadata.name) {
        found.set(entry.metadata.name, { name: entry.metadata.name, size: entry.size });
      }
    } catch { /* not one of ours after all */ }
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** Drop tus-js-client's resume entries for `fingerprint`. */
function forget(fingerprint) {
  const keys = [];
  for (let i = 0; i < localStorage.length; i += 1) keys.push(localStorage.key(i));
  for (const key of keys) if (key && key.startsWith(`tus::${fingerprint}::`)) localStorage.removeItem(key);
}

/** The server name for a chosen file: the folder plus its path inside a chosen folder. */
export function targetName(prefix, path) {
  const folder = prefix.trim().replace(/^\/+/, "");
  return (folder && !folder.endsWith("/") ? `${folder}/` : folder) + path.replace(/^\/+/, "");
}

/**
 * Upload `entries` ({file, path}) one after the other; `onStored()` after each success,
 * `onCancelled()` after each cancel (a file cancelled while waiting is skipped).
 */
export async function uploadAll(list, prefix, entries, onStored, onCancelled) {
  const items = entries.map(({ file, path }) => new UploadItem(list, file, targetName(prefix, path)));
  for (const item of items) {
    try {
      if (item.controller.signal.aborted) throw new DOMException("cancelled", "AbortError");
      if (await uploadItem(item)) onStored();
    } catch (err) {
      if (err && err.name === "AbortError") {
        item.showCancelled();
        onCancelled();
      } else {
        item.show("failed", "Failed", tusMessage(err));
      }
    }
  }
}

/** The files of a drop: plain files, and the files inside dropped folders (where supported). */
export async function droppedEntries(dataTransfer) {
  const roots = [...dataTransfer.items]
    .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
  if (roots.some((entry) => entry === null)) {
    return [...dataTransfer.files].map((file) => ({ file, path: file.name }));
  }
  const found = [];
  const walk = async (entry) => {
    if (entry.isFile) {
      const file = await new Promise((ok, fail) => entry.file(ok, fail));
      found.push({ file, path: entry.fullPath.replace(/^\//, "") });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) { // readEntries answers in batches until an empty one
        const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
        if (batch.length === 0) break;
        for (const child of batch) await walk(child);
      }
    }
  };
  for (const root of roots) await walk(root);
  return found;
}
