// Downloads from the page: the bytes are checked against the server's MD5 before a file
// appears on the user's disk, and no file is ever held whole in memory where avoidable.
//
// Where the File System Access API exists (Chromium: `showSaveFilePicker`), the body streams
// chunk by chunk into the file the user chose, hashed as it passes (hash-wasm in the page: a
// few milliseconds per chunk between awaits keeps the page responsive, and a worker would
// need every chunk copied to it). The writable stream keeps what it is given in a swap file
// until `close()`, which commits it: the page closes only once the MD5 matched, and aborts
// otherwise, so a damaged or broken download never becomes visible as the file. Memory stays
// at one chunk whatever the size.
//
// Elsewhere (Firefox, Safari) a page can only check bytes before saving them by holding them
// all, so it does that up to MEMORY_LIMIT and points to `updl get` beyond.
/* global hashwasm */
import { openDownload } from "./api.js";
import { formatSize } from "./format.js";

export const MEMORY_LIMIT = 512 * 1024 * 1024;

/** Whether this browser can stream a download into a file the user chooses. */
export function canStream() {
  return typeof window.showSaveFilePicker === "function";
}

/**
 * Save the server file `info` ({name, size}) on the user's disk once its MD5 is verified;
 * `onProgress(done, total)` as bytes arrive. Resolves to the MD5, or null when the user
 * closed the save dialog; rejects with an Error whose message says what happened.
 */
export async function saveVerified(info, onProgress) {
  return canStream() ? streamToDisk(info, onProgress) : saveFromMemory(info, onProgress);
}

/** Read `response`'s body chunk by chunk: hash each, hand it to `sink`; the hex MD5. */
async function pump(response, total, sink, onProgress) {
  const hasher = await hashwasm.createMD5();
  hasher.init();
  const reader = response.body.getReader();
  let done = 0;
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch {
      throw new Error("the connection broke before the whole file arrived; nothing was saved. Try again.");
    }
    if (chunk.done) break;
    hasher.update(chunk.value);
    await sink(chunk.value);
    done += chunk.value.byteLength;
    onProgress(done, total);
  }
  return hasher.digest("hex");
}

function damaged(name, actual, expected) {
  return new Error(`${name} arrived damaged (MD5 ${actual}, the server's ${expected}): `
    + "nothing was saved. Try again.");
}

/** The server's answer for `info`, with the MD5 it declares (an error if it declares none). */
async function fetchChecked(info) {
  const { response, md5 } = await openDownload(info.name);
  if (!md5) throw new Error("the server declared no MD5 for it, so it cannot be checked");
  const length = Number(response.headers.get("Content-Length"));
  return { response, md5, total: Number.isFinite(length) && length > 0 ? length : info.size };
}

async function streamToDisk(info, onProgress) {
  let handle;
  try {
    // First, while the click still counts as the user's gesture (the browser requires one).
    handle = await window.showSaveFilePicker({ suggestedName: info.name.split("/").pop() });
  } catch (err) {
    if (err.name === "AbortError") return null; // the user closed the dialog
    throw err;
  }
  let writable = null;
  try {
    const { response, md5, total } = await fetchChecked(info);
    writable = await handle.createWritable();
    const actual = await pump(response, total, (chunk) => writable.write(chunk), onProgress);
    if (actual !== md5) throw damaged(info.name, actual, md5);
    await writable.close(); // the commit: only now does the chosen file receive the bytes
    return actual;
  } catch (err) {
    if (writable) await writable.abort().catch(() => {}); // drops the swap file
    await removeIfEmpty(handle);
    throw err;
  }
}

/**
 * Remove the chosen file if it is empty: Chromium creates (and empties) the file when the
 * user chooses it, so a failed download would leave a 0-byte file behind. One with content
 * is never removed.
 */
async function removeIfEmpty(handle) {
  try {
    if (typeof handle.remove === "function" && (await handle.getFile()).size === 0) {
      await handle.remove();
    }
  } catch { /* best effort: an empty file may stay */ }
}

async function saveFromMemory(info, onProgress) {
  const tooLarge = (size) => new Error(`it is ${formatSize(size)}, and this browser can only check `
    + `a download by holding it in memory, which the page does up to ${formatSize(MEMORY_LIMIT)}. `
    + `Use Chrome or Edge (they save it as it arrives), or: updl get ${info.name}`);
  if (info.size > MEMORY_LIMIT) throw tooLarge(info.size);
  const { response, md5, total } = await fetchChecked(info);
  if (total > MEMORY_LIMIT) { // replaced by a bigger file since the listing
    await response.body.cancel();
    throw tooLarge(total);
  }
  const chunks = [];
  const actual = await pump(response, total, (chunk) => { chunks.push(chunk); }, onProgress);
  if (actual !== md5) throw damaged(info.name, actual, md5);
  // A blob of type octet-stream, saved through a download link: the browser never renders it.
  const url = URL.createObjectURL(new Blob(chunks, { type: "application/octet-stream" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = info.name.split("/").pop();
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return actual;
}
