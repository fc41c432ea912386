// The updl HTTP API (docs/api.md) as the page uses it: same origin, token in a header.

const TOKEN_KEY = "updl.token";

/** The token of this tab's session (sessionStorage: gone with the tab; never a cookie). */
export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** An answer that was not what the page asked for, with the server's JSON message. */
export class ApiError extends Error {
  constructor(status, message, body = {}) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** A file name in a URL: percent-encoded, `/` kept (as the API says). */
export function namePath(name) {
  return name.split("/").map(encodeURIComponent).join("/");
}

/** `fetch` with the token; `ApiError` for a non-2xx answer (401 also calls `onUnauthorized`). */
export async function call(path, { method = "GET", headers = {}, token = session.token } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method, cache: "no-store", credentials: "omit",
      headers: { ...headers, Authorization: `Bearer ${token}` },
    });
  } catch (err) {
    throw new ApiError(0, "cannot reach the server: check your connection and try again");
  }
  if (!res.ok) {
    let body = {};
    try { body = await res.json(); } catch { /* not JSON: a proxy's page */ }
    const error = new ApiError(res.status, body.error || `${res.status} ${res.statusText}`, body);
    if (res.status === 401 && token === session.token) call.onUnauthorized(error);
    throw error;
  }
  return res;
}
call.onUnauthorized = () => {};

/** One page of the folder `prefix`: `{files, prefixes, next_cursor}` (each subfolder once, by the server). */
export async function listFiles(prefix, limit, cursor) {
  const query = new URLSearchParams({ prefix, delimiter: "/", limit: String(limit) });
  if (cursor) query.set("cursor", cursor);
  return (await call(`/files?${query}`)).json();
}

/** FileInfo of `name`, or null when there is no such file. */
export async function fileInfo(name) {
  try {
    return await (await call(`/info/${namePath(name)}`)).json();
  } catch (err) {
    if (err.status === 404) return null;
    throw err;
  }
}

/** Delete `name` (a 404 means someone else already did: fine). */
export async function deleteFile(name) {
  try {
    await call(`/files/${namePath(name)}`, { method: "DELETE" });
  } catch (err) {
    if (err.status !== 404) throw err;
  }
}

/** The answer to GET `name`, its body unread, with the MD5 the server declares ("" if none). */
export async function openDownload(name) {
  const response = await call(`/files/${namePath(name)}`);
  return { response, md5: declaredMd5(response.headers) };
}

/** The hex MD5 in `ETag` (quoted hex), else in `Content-MD5` (base64), else "". */
function declaredMd5(headers) {
  const etag = (headers.get("ETag") || "").replaceAll('"', "");
  if (/^[0-9a-f]{32}$/.test(etag)) return etag;
  try {
    const raw = atob(headers.get("Content-MD5") || "");
    if (raw.length === 16) return [...raw].map((c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join("");
  } catch { /* not base64 */ }
  return "";
}

/** Whether `token` is accepted: null, or the server's reason to refuse it. */
export async function checkToken(token) {
  try {
    await call("/files?limit=1", { token });
    return null;
  } catch (err) {
    if (err.status === 401) return err.message;
    throw err;
  }
}
