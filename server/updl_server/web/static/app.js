// The updl page: sign in, upload, browse, download, delete, verify. Plain modules, no build.
// Every piece of server data reaches the page as text (textContent), never as markup.
import { call, checkToken, deleteFile, fileInfo, listFiles, session } from "./api.js";
import { saveVerified } from "./download.js";
import { formatSize, formatTime } from "./format.js";
import { md5Of } from "./md5.js";
import { droppedEntries, targetName, unfinishedUploads, uploadAll } from "./upload.js";

const $ = (id) => document.getElementById(id);

function setStatus(element, text, kind = "") {
  element.textContent = text;
  element.className = `status ${kind}`;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("aria") || key === "title") node.setAttribute(key.replace(/^aria/, "aria-").toLowerCase(), value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

// ---- session -----------------------------------------------------------------------------

function showSignedIn(signedIn) {
  $("signin").hidden = signedIn;
  $("app").hidden = !signedIn;
  $("sign-out").hidden = !signedIn;
  $("who").hidden = !signedIn;
  $("who").textContent = signedIn ? "Signed in (this tab only)" : "";
}

function signOut(message) {
  session.token = null;
  showSignedIn(false);
  setStatus($("signin-status"), message || "", message ? "bad" : "");
  $("token").value = "";
  $("token").focus();
}

call.onUnauthorized = (err) =>
  signOut(`The server no longer accepts this token (${err.message}). Sign in again.`);

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  setStatus($("signin-status"), "Checking the token…");
  try {
    const refusal = await checkToken(token);
    if (refusal) {
      setStatus($("signin-status"), `Wrong token: the server refused it (${refusal}). Paste the whole `
        + "token printed by updl-server add-user or new-token.", "bad");
      return;
    }
  } catch (err) {
    setStatus($("signin-status"), err.message, "bad");
    return;
  }
  session.token = token;
  $("token").value = "";
  setStatus($("signin-status"), "");
  showSignedIn(true);
  showUnfinished();
  browse.open("");
});

$("sign-out").addEventListener("click", () => signOut(""));

// ---- upload ------------------------------------------------------------------------------

async function startUploads(entries) {
  if (entries.length === 0) return;
  await uploadAll($("uploads"), $("prefix").value, entries, () => browse.reload(), showUnfinished);
  showUnfinished();
}

/** Say which uploads can resume: those this browser left unfinished (a reload, a crash). */
function showUnfinished() {
  const unfinished = unfinishedUploads();
  $("unfinished").hidden = unfinished.length === 0;
  $("unfinished-list").replaceChildren(...unfinished.map(({ name, size }) =>
    el("li", { dataset: { name } }, `${name} (${formatSize(size)})`)));
}

$("choose-files").addEventListener("click", () => $("files-input").click());
$("choose-folder").addEventListener("click", () => $("folder-input").click());
for (const id of ["files-input", "folder-input"]) {
  $(id).addEventListener("change", (event) => {
    const files = [...event.target.files];
    event.target.value = ""; // choosing the same file again must fire "change" again
    startUploads(files.map((file) => ({ file, path: file.webkitRelativePath || file.name })));
  });
}

function dropZone(zone, onDrop) {
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    onDrop(event.dataTransfer);
  });
}
dropZone($("drop"), async (dataTransfer) => startUploads(await droppedEntries(dataTransfer)));
// A file dropped beside a zone must not make the browser open it in place of the page.
window.addEventListener("dragover", (event) => event.preventDefault());
window.addEventListener("drop", (event) => event.preventDefault());

// ---- browse ------------------------------------------------------------------------------

const browse = {
  prefix: "",
  cursors: [null], // cursors[i]: the cursor of page i (null: the first)
  page: 0,

  open(prefix) {
    this.prefix = prefix;
    this.cursors = [null];
    this.page = 0;
    this.load();
  },

  reload() { this.load(); },

  async load() {
    setStatus($("browse-status"), "Loading…");
    let answer;
    try {
      answer = await listFiles(this.prefix, Number($("page-size").value), this.cursors[this.page]);
    } catch (err) {
      setStatus($("browse-status"), `Cannot list files: ${err.message}`, "bad");
      return;
    }
    this.cursors.length = this.page + 1;
    if (answer.next_cursor) this.cursors.push(answer.next_cursor);
    this.render(answer.files, answer.prefixes || []);
  },

  render(files, folders) {
    renderCrumbs(this.prefix);
    // The server rolls the names below each subfolder up into one prefix, listed once
    // across all pages; folders and files are shown in one name order.
    const entries = [
      ...folders.map((path) => ({ name: path, row: () => folderRow(path, path.slice(this.prefix.length)) })),
      ...files.map((info) => ({ name: info.name, row: () => fileRow(info, info.name.slice(this.prefix.length)) })),
    ].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    $("rows").replaceChildren(...entries.map((entry) => entry.row()));
    const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
    setStatus($("browse-status"), entries.length === 0 && this.page === 0
      ? (this.prefix ? "No files in this folder." : "No files yet: upload some above.")
      : `${plural(files.length, "file")} and ${plural(folders.length, "folder")} on this page.`);
    $("prev-page").disabled = this.page === 0;
    $("next-page").disabled = this.cursors.length <= this.page + 1;
    $("page-label").textContent = `Page ${this.page + 1}`;
  },
};

function renderCrumbs(prefix) {
  const parts = prefix.split("/").filter(Boolean);
  const crumbs = [el("button", { type: "button", textContent: "All files", onclick: () => browse.open("") })];
  parts.forEach((part, i) => {
    const target = `${parts.slice(0, i + 1).join("/")}/`;
    crumbs.push(el("span", { textContent: "/" }),
      el("button", { type: "button", textContent: part, onclick: () => browse.open(target) }));
  });
  crumbs[crumbs.length - 1].setAttribute("aria-current", "location");
  $("crumbs").replaceChildren(...crumbs);
}

function folderRow(path, label) {
  return el("tr", { className: "folder", dataset: { folder: path } },
    el("td", { colSpan: 5 },
      el("button", { type: "button", textContent: label, ariaLabel: `Open folder ${path}`,
        onclick: () => browse.open(path) })));
}

function fileRow(info, label) {
  const actions = el("td", { className: "actions" },
    el("button", { type: "button", textContent: "Download", ariaLabel: `Download ${info.name}`,
      onclick: () => downloadFile(info) }),
    el("button", { type: "button", textContent: "Verify…", ariaLabel: `Verify a local copy of ${info.name}`,
      onclick: () => { $("verify-name").value = info.name; $("verify-choose").focus(); } }),
    el("button", { type: "button", textContent: "Delete", className: "danger", ariaLabel: `Delete ${info.name}`,
      onclick: () => confirmDelete(info.name) }));
  return el("tr", { className: "file", dataset: { name: info.name, md5: info.md5 } },
    el("td", { className: "name" }, label),
    el("td", { className: "size", dataset: { label: "Size" }, title: `${info.size} bytes` }, formatSize(info.size)),
    el("td", { className: "md5", dataset: { label: "MD5" } }, el("code", {}, info.md5)),
    el("td", { className: "time", dataset: { label: "Stored" }, title: info.created }, formatTime(info.created)),
    actions);
}

$("prev-page").addEventListener("click", () => { browse.page -= 1; browse.load(); });
$("next-page").addEventListener("click", () => { browse.page += 1; browse.load(); });
$("page-size").addEventListener("change", () => browse.open(browse.prefix));
$("refresh").addEventListener("click", () => browse.reload());

async function downloadFile(info) {
  const status = $("browse-status");
  setStatus(status, `Downloading ${info.name}…`);
  let shown = -1;
  const onProgress = (done, total) => {
    const percent = Math.floor((100 * done) / (total || 1));
    if (percent === shown) return; // one update per percent, not one per chunk
    shown = percent;
    setStatus(status, `Downloading ${info.name}… ${percent}% (${formatSize(done)} of ${formatSize(total)}); `
      + "its MD5 is checked before the file is saved.");
  };
  try {
    const md5 = await saveVerified(info, onProgress);
    if (md5 === null) setStatus(status, `Download of ${info.name} cancelled.`);
    else setStatus(status, `Downloaded ${info.name}: MD5 ${md5} verified.`, "ok");
  } catch (err) {
    setStatus(status, `Cannot download ${info.name}: ${err.message}`, "bad");
  }
}

function confirmDelete(name) {
  const dialog = $("confirm-delete");
  $("confirm-name").textContent = name;
  dialog.returnValue = "";
  dialog.onclose = async () => {
    if (dialog.returnValue !== "delete") return;
    try {
      await deleteFile(name);
      setStatus($("browse-status"), `Deleted ${name}.`, "ok");
      browse.reload();
    } catch (err) {
      setStatus($("browse-status"), `Cannot delete ${name}: ${err.message}`, "bad");
    }
  };
  dialog.showModal();
}

// ---- verify a local file -----------------------------------------------------------------

async function verifyLocal(file) {
  const status = $("verify-status");
  const name = $("verify-name").value.trim() || targetName(browse.prefix, file.name);
  setStatus(status, `Computing the MD5 of ${file.name}…`);
  try {
    const [local, remote] = await Promise.all([
      md5Of(file, (done, total) => setStatus(status,
        `Computing the MD5 of ${file.name}… ${Math.floor((100 * done) / (total || 1))}%`)),
      fileInfo(name),
    ]);
    if (remote === null) {
      setStatus(status, `There is no file named ${name} on the server (local MD5 ${local}).`, "bad");
    } else if (remote.md5 === local) {
      setStatus(status, `Match: ${file.name} has the same MD5 as ${name} on the server (${local}).`, "ok");
    } else {
      setStatus(status, `Different: ${file.name} has MD5 ${local}, but ${name} on the server has ${remote.md5}.`, "bad");
    }
  } catch (err) {
    setStatus(status, `Cannot verify: ${err.message}`, "bad");
  }
}

$("verify-choose").addEventListener("click", () => $("verify-input").click());
$("verify-input").addEventListener("change", (event) => {
  const [file] = event.target.files;
  event.target.value = "";
  if (file) verifyLocal(file);
});
dropZone($("verify-drop"), (dataTransfer) => {
  const [file] = dataTransfer.files;
  if (file) verifyLocal(file);
});

// ---- start -------------------------------------------------------------------------------

if (session.token) {
  showSignedIn(true);
  showUnfinished();
  browse.open("");
} else {
  showSignedIn(false);
}
