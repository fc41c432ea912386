// The MD5 of a Blob (a File), computed off the page's thread by streaming slices through
// hash-wasm: memory stays at one slice whatever the file's size, and the page stays responsive.
// Message in: {blob}. Messages out: {type: "progress", done, total}, then {type: "done", md5}
// or {type: "error", message}.
/* global hashwasm */
importScripts("/web/vendor/hash-wasm-md5.umd.min.js");

const SLICE = 4 * 1024 * 1024;

self.onmessage = async (event) => {
  const blob = event.data.blob;
  try {
    const hasher = await hashwasm.createMD5();
    hasher.init();
    const reader = new FileReaderSync();
    for (let offset = 0; offset < blob.size; ) {
      const end = Math.min(offset + SLICE, blob.size);
      hasher.update(new Uint8Array(reader.readAsArrayBuffer(blob.slice(offset, end))));
      offset = end;
      self.postMessage({ type: "progress", done: offset, total: blob.size });
    }
    self.postMessage({ type: "done", md5: hasher.digest("hex") });
  } catch (err) {
    // A file that changed or vanished on disk since it was chosen cannot be read any more.
    self.postMessage({ type: "error", message: (err && err.message) || String(err) });
  }
};
