// The dashboard's JSON API (served by `braid run --dashboard` and by
// braid-operator --dashboard-listen; see docs/dashboard.md).

export interface JobRow {
  namespace: string;
  name: string;
  phase: string;
  reason: string;
  message: string;
  round: number;
  total_rounds: number;
  train_loss: number | null;
  eval_loss: number | null;
  eval_accuracy: number | null;
  epsilon: number | null;
  max_epsilon: number | null;
}

export interface RoundRecord {
  round: number;
  participants: number;
  sampled: number;
  tenants: string[];
  train_loss: number;
  eval_loss: number;
  eval_accuracy: number;
  seconds: number;
  bytes_up: number;
  bytes_down: number;
  epsilon?: number;
}

export interface JobSpecSummary {
  model: { kind: string; hidden?: number[]; num_classes?: number };
  strategy: { name: string; rounds: number; min_clients: number; fraction_fit: number };
  training: { local_epochs: number; batch_size: number; learning_rate: number; optimizer: string };
  tenants: { name: string; replicas: number }[];
  privacy: { maxEpsilon?: number; [k: string]: unknown } | null;
}

export interface TenantConsent {
  tenant: string;
  namespace: string;
  consent: "NotRequired" | "Pending" | "Approved" | "Refused";
  comment: string;
}

export interface JobDetail extends JobRow {
  spec: JobSpecSummary;
  rounds: RoundRecord[];
  consent?: TenantConsent[];
}

export interface AuditEntry {
  seq: number;
  time: string;
  kind: string;
  actor: string;
  job: string;
  details: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

export interface AuditLog {
  path: string;
  entries: AuditEntry[];
  verification: { ok: boolean; entries: number; line: number; problem: string; text: string };
}

export interface Tenant {
  name: string;
  namespace: string;
  jobs: string[];
  replicas: number;
  policy: Record<string, unknown> | null;
  approval: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

// Every dashboard needs a bearer token, kept for this browser tab only
// (sessionStorage) and sent only as a header to this origin: nothing is
// sent automatically (no cookie), so another site's page cannot act with it.
// `braid run --dashboard` prints a URL that carries its run's secret after
// "#token=" (a fragment never leaves the browser); the operator's dashboard
// asks for a Kubernetes token.
const TOKEN_KEY = "braid-token";
export const token = {
  get: (): string => sessionStorage.getItem(TOKEN_KEY) ?? "",
  set: (t: string) => sessionStorage.setItem(TOKEN_KEY, t.trim()),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** Keeps a token from the URL's "#token=..." and removes it from the address bar and history. */
export function adoptTokenFromUrl(): void {
  const m = /^#token=([^&]+)$/.exec(location.hash);
  if (!m) return;
  token.set(decodeURIComponent(m[1]));
  history.replaceState(null, "", location.pathname + location.search);
}

function headers(): Record<string, string> {
  const t = token.get();
  return t ? { Accept: "application/json", Authorization: `Bearer ${t}` } : { Accept: "application/json" };
}

async function request<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(path, { ...init, headers: { ...headers(), ...(init.headers ?? {}) } });
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = (await res.json()) as { error?: string };
      if (body.error) message = body.error;
    } catch {
      /* not JSON: keep the status line */
    }
    throw new ApiError(res.status, message);
  }
  return (await res.json()) as T;
}

const get = <T>(path: string) => request<T>(path);

const seg = encodeURIComponent;

export const api = {
  jobs: () => get<{ jobs: JobRow[] }>("/api/jobs").then((r) => r.jobs),
  job: (ns: string, name: string) => get<JobDetail>(`/api/jobs/${seg(ns)}/${seg(name)}`),
  audit: (ns: string, name: string) => get<AuditLog>(`/api/jobs/${seg(ns)}/${seg(name)}/audit`),
  tenants: () => get<{ tenants: Tenant[] }>("/api/tenants").then((r) => r.tenants),
  decide: (ns: string, name: string, tenant: string, approve: boolean, comment: string) =>
    request<unknown>(`/api/jobs/${seg(ns)}/${seg(name)}/tenants/${seg(tenant)}/${approve ? "approve" : "refuse"}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ comment }),
    }),
};

/** Calls `onEvent` for every job event; `onState` with "live" / "reconnecting". */
export function subscribe(onEvent: (data: unknown) => void, onState: (s: string) => void): EventSource {
  // EventSource cannot send headers: the token goes in the query.
  const t = token.get();
  const es = new EventSource(t ? `/api/events?access_token=${encodeURIComponent(t)}` : "/api/events");
  es.onopen = () => onState("live");
  es.onerror = () => onState("reconnecting…");
  es.addEventListener("job", (e) => onEvent(JSON.parse((e as MessageEvent<string>).data)));
  return es;
}
