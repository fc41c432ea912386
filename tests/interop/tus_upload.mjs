// One upload with tus-js-client, the public tus client, as a Node.js user would write it.
//
//   node tus_upload.mjs '{"endpoint": ".../tus/", "token": "...", "path": "f", "metadata": {...}}'
//
// Optional arguments: tus-js-client's chunkSize, parallelUploads, metadataForPartialUploads,
// uploadDataDuringCreation and retryDelays (null: fail at once); urlStorage (a JSON file: remember
// the upload URL, as FileUrlStorage does across runs); resume (look for a previous upload of this
// file in urlStorage and continue it); abortAfterChunks (abort once that many PATCHes were
// accepted; with terminate: true, also delete the upload on the server).
// Prints one JSON line: {ok, aborted, resumed, url, chunks: [bytesAccepted...], status, error,
// headers (of the completing answer)}. The exit code is 0 whenever that line is printed.
import fs from 'node:fs'
import * as tus from 'tus-js-client'

const args = JSON.parse(process.argv[2])
const result = { ok: false, aborted: false, resumed: false, url: null, chunks: [] }

function finish (extra) {
  Object.assign(result, extra, { url: upload.url })
  process.stdout.write(JSON.stringify(result) + '\n')
  process.exit(0) // an aborted upload keeps its file open; nothing else is left to wait for
}

const options = {
  endpoint: args.endpoint,
  headers: { Authorization: `Bearer ${args.token}` },
  metadata: args.metadata,
  onChunkComplete (chunkSize, bytesAccepted) {
    result.chunks.push(bytesAccepted)
    if (args.abortAfterChunks && result.chunks.length >= args.abortAfterChunks) {
      upload.abort(Boolean(args.terminate)).then(() => finish({ aborted: true }),
        (error) => finish({ aborted: true, error: String(error) }))
    }
  },
  onSuccess ({ lastResponse }) {
    const headers = {}
    for (const name of ['ETag', 'Upload-Md5', 'Upload-Offset']) {
      headers[name] = lastResponse.getHeader(name) ?? null
    }
    finish({ ok: true, headers })
  },
  onError (error) {
    finish({ error: String(error), status: error.originalResponse?.getStatus() ?? null })
  }
}
const passed = ['chunkSize', 'parallelUploads', 'metadataForPartialUploads',
  'uploadDataDuringCreation', 'retryDelays']
for (const key of passed) {
  if (key in args) options[key] = args[key]
}
if (args.urlStorage) options.urlStorage = new tus.FileUrlStorage(args.urlStorage)

// A ReadStream with a path: tus-js-client reads each chunk from the file, never the whole file.
const upload = new tus.Upload(fs.createReadStream(args.path), options)
if (args.resume) {
  const previous = await upload.findPreviousUploads()
  if (previous.length > 0) {
    upload.resumeFromPreviousUpload(previous[0])
    result.resumed = true
  }
}
upload.start()
