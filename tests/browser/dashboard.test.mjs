// Browser test (ctest label `browser`): `braid run --dashboard` on a variant
// of examples/tabular.yaml with more rounds, driven in Debian's chromium by
// playwright-core. The job is listed, the loss chart grows as rounds
// complete, the job ends Succeeded, the audit log verifies, tenants need no
// approval. Screenshots go to $BRAID_BUILD_DIR/test-artifacts/browser.
//
//   BRAID_BUILD_DIR=build BRAID_SOURCE_DIR=. node --test tests/browser/dashboard.test.mjs
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { after, before, test } from "node:test";

const source = path.resolve(process.env.BRAID_SOURCE_DIR ?? ".");
const build = path.resolve(process.env.BRAID_BUILD_DIR ?? path.join(source, "build"));
const chromiumPath = process.env.BRAID_CHROMIUM ?? "/usr/bin/chromium";
const rounds = 30;
const jobName = "tabular-browser";

function loadPlaywright() {
  const require = createRequire(path.join(source, "web", "package.json"));
  try {
    return require("playwright-core");
  } catch (e) {
    assert.fail(`playwright-core is not installed in ${source}/web/node_modules (${e.message}); ` +
      "run `npm ci` in web/ (the braid_web build target does)");
  }
}

// The example job with more rounds and absolute data paths, in `dir`.
function writeJob(dir) {
  const examples = path.join(source, "examples");
  const yaml = readFileSync(path.join(examples, "tabular.yaml"), "utf8")
    .replace(/name: tabular-demo/, `name: ${jobName}`)
    .replace(/rounds: \d+/, `rounds: ${rounds}`)
    .replaceAll("path: data/", `path: ${examples}/data/`);
  const file = path.join(dir, "job.yaml");
  writeFileSync(file, yaml);
  return file;
}

let braid;
let braidOutput = "";
let context;
let page;
let url;
const artifacts = path.join(build, "test-artifacts", "browser");

async function shot(name) {
  const file = path.join(artifacts, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file}`);
}

before(async () => {
  assert.ok(existsSync(chromiumPath), `${chromiumPath} not found: install Debian's chromium (scripts/deps.sh does)`);
  const { chromium } = loadPlaywright();
  const braidBin = path.join(build, "bin", "braid");
  assert.ok(existsSync(braidBin), `${braidBin} not found: build Braid first`);
  assert.ok(existsSync(path.join(build, "share", "braid", "web", "index.html")),
    "the dashboard is not built: cmake --build build --target braid_web");
  mkdirSync(artifacts, { recursive: true });
  const tmp = mkdtempSync(path.join(build, "browser-test-"));
  const job = writeJob(tmp);

  braid = spawn(braidBin, ["run", job, "--allow-path", path.join(source, "examples"), "--dashboard", "127.0.0.1:0", "--workdir", path.join(tmp, "work")],
    { stdio: ["ignore", "pipe", "pipe"] });
  url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no dashboard URL within 60 s:\n${braidOutput}`)), 60_000);
    const onData = (d) => {
      braidOutput += d;
      const m = braidOutput.match(/dashboard: (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    braid.stdout.on("data", onData);
    braid.stderr.on("data", onData);
    braid.on("exit", (code) => reject(new Error(`braid exited with ${code} before serving:\n${braidOutput}`)));
  });
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/#token=[0-9a-f]{64}$/,
    "binds where asked, with the port it picked and this run's secret");

  context = await chromium.launchPersistentContext(mkdtempSync(path.join(tmp, "chromium-")), {
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 900 },
  });
  page = context.pages()[0] ?? (await context.newPage());
});

after(async () => {
  await context?.close();
  if (braid && braid.exitCode === null) {
    const exited = new Promise((r) => braid.on("exit", r));
    braid.kill("SIGINT");
    await exited;
  }
});

test("the job is listed, its loss chart grows round by round, and it ends Succeeded", async () => {
  await page.goto(url);
  const row = page.locator(`tr[data-job="default/${jobName}"]`);
  await row.waitFor({ timeout: 30_000 });
  await shot("jobs");
  await row.getByRole("link", { name: jobName }).click();
  const loss = page.locator('figure[data-chart="loss"]');
  await loss.waitFor({ timeout: 30_000 });

  // Sample the chart as SSE redraws it: the point count must rise through
  // several values (never fall) to the number of rounds, without a reload.
  const seen = [];
  let midShot = false;
  const deadline = Date.now() + 8 * 60_000;
  while (Date.now() < deadline) {
    const points = Number(await loss.getAttribute("data-points"));
    if (seen.length === 0 || seen[seen.length - 1] !== points) seen.push(points);
    if (!midShot && points >= 3 && points < rounds) {
      await shot("job-running");
      midShot = true;
    }
    if ((await page.locator('h1 [data-phase="Succeeded"]').count()) > 0 && points === rounds) break;
    await page.waitForTimeout(100);
  }
  console.log(`loss chart point counts seen: ${seen.join(" ")}`);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > seen[i - 1], `point count fell: ${seen}`);
  assert.equal(seen[seen.length - 1], rounds, `the chart ends with one point per round: ${seen}\n${braidOutput}`);
  assert.ok(seen.filter((n) => n > 0 && n < rounds).length >= 3, `the chart grew live, in steps: ${seen}`);
  await page.locator('h1 [data-phase="Succeeded"]').waitFor({ timeout: 5_000 });
  // Two series (train, eval loss), one circle per round each.
  assert.equal(await loss.locator("circle").count(), 2 * rounds);
  assert.equal(await page.locator('[data-field="round"]').first().textContent(), `round ${rounds} of ${rounds}`);
  assert.equal(Number(await page.locator('figure[data-chart="participation"]').getAttribute("data-points")), rounds);
  await shot("job-succeeded");
});

test("the audit page shows a verified chain with every round", async () => {
  await page.getByRole("link", { name: "Audit log" }).click();
  const verdict = page.locator("[data-verified]");
  await verdict.waitFor({ timeout: 10_000 });
  assert.equal(await verdict.getAttribute("data-verified"), "verified", await verdict.textContent());
  assert.match(await verdict.textContent(), /verified/);
  assert.equal(await page.locator('tr[data-kind="round_completed"]').count(), rounds);
  assert.equal(await page.locator('tr[data-kind="job_finished"]').count(), 1);
  await shot("audit");
});

test("the tenants page lists the job's tenants, approval not required", async () => {
  await page.getByRole("link", { name: "Tenants" }).click();
  const rows = page.locator("tr[data-tenant]");
  await rows.first().waitFor({ timeout: 10_000 });
  assert.deepEqual(await rows.evaluateAll((rs) => rs.map((r) => r.getAttribute("data-tenant"))),
    ["st-mary", "charite", "karolinska"]);
  for (const cell of await page.locator('[data-field="approval"]').all()) {
    assert.equal(await cell.textContent(), "not required");
  }
  await shot("tenants");
});

test("the dashboard keeps serving after the job until Ctrl-C, which exits with the job's status", async () => {
  // After the job: the final evaluation, the summary, then the notice.
  for (let i = 0; i < 600 && !/still serving at/.test(braidOutput); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(braidOutput, /still serving at/);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(braid.exitCode, null, "still running after the job ended");
  const [base, token] = url.split("#token=");
  assert.equal((await fetch(`${base}api/jobs`)).status, 401, "the API needs the run's token");
  const res = await fetch(`${base}api/jobs`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal((await res.json()).jobs[0].phase, "Succeeded");
  const exited = new Promise((r) => braid.on("exit", (code) => r(code)));
  braid.kill("SIGINT");
  assert.equal(await exited, 0);
});
