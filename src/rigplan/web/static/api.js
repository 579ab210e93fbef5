// The JSON API under /api: GET with query parameters, POST with a JSON body; errors carry the
// server's one-line message.

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.detail ? body.detail : `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

async function answer(res) {
  let body = null;
  try { body = await res.json(); } catch { body = null; }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

export async function api(path, params = {}) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === "") continue;
    for (const item of [].concat(v)) qs.append(k, String(item));
  }
  const url = qs.toString() ? `${path}?${qs}` : path;
  return answer(await fetch(url, { headers: { Accept: "application/json" } }));
}

// Raw bytes (a GGUF header) as application/octet-stream, with query parameters.
export async function postBytes(path, params, bytes) {
  const url = `${path}?${new URLSearchParams(params)}`;
  return answer(await fetch(url, {
    method: "POST",
    headers: { Accept: "application/json", "Content-Type": "application/octet-stream" },
    body: bytes,
  }));
}

export async function post(path, body) {
  return answer(await fetch(path, {
    method: "POST",
    headers: { Accept: "application/json", "Content-Type": "application/json" },
    body: JSON.stringify(body),
  }));
}
