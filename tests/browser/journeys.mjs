// Browser journeys through the govhub web UI, run in Debian's Chromium by playwright-core.
//
//   GOVHUB_URL=http://127.0.0.1:18080 node tests/browser/journeys.mjs
//
// Expects a server started with `govhub demo` (the synthetic demo city). Prints one
// line per journey, then "N passed, M failed"; exits non-zero on any failure.
// Screenshots go to tests/browser/screenshots/.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = (process.env.GOVHUB_URL || '').replace(/\/+$/, '');
if (!BASE) {
  console.error('set GOVHUB_URL, e.g. GOVHUB_URL=http://127.0.0.1:18080');
  process.exit(2);
}
const PASSWORD = process.env.GOVHUB_DEMO_PASSWORD || 'Demo@2026';
const OFFICER = { username: 'gaj-officer', org: '常州市公安局' };
const CITIZEN = { username: 'citizen' };
const SHOTS = join(dirname(fileURLToPath(import.meta.url)), 'screenshots');
mkdirSync(SHOTS, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});

/** Problems the browser itself reports (CSP violations, failed loads, script errors). */
function watch(page, problems) {
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
}

async function newPage(viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport, locale: 'zh-CN' });
  const page = await context.newPage();
  page.problems = [];
  watch(page, page.problems);
  return { context, page };
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function signIn(page, username) {
  await page.goto(`${BASE}/login`);
  await page.fill('#username', username);
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/login')), page.click('form.form-stack button[type=submit]')]);
}

/** Click something that navigates (possibly to the same URL) and wait for the new page. */
async function clickAndWait(page, selector) {
  await Promise.all([page.waitForEvent('framenavigated'), page.click(selector)]);
  await page.waitForLoadState('load');
}

function assertNoProblems(page) {
  // A 403/404 page logs "Failed to load resource" for itself; everything else counts.
  const real = page.problems.filter((p) => !/status of 40[34]/.test(p));
  assert.deepEqual(real, [], 'the browser reported problems');
}

// One signed-in officer session shared by the journeys that build on each other.
const officer = await newPage();

const journeys = [
  ['home page in Chinese', async () => {
    const { context, page } = await newPage();
    const resp = await page.goto(`${BASE}/`);
    assert.equal(resp.status(), 200);
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    assert.match(await page.textContent('.brand'), /常州市政务数据共享交换平台/);
    assert.match(await page.textContent('main'), /欢迎使用/);
    assert.ok(await page.isVisible('main a[href="/login"]'), 'sign-in button');
    const csp = resp.headers()['content-security-policy'] || '';
    assert.match(csp, /script-src 'self'/);
    const bg = await page.$eval('.topbar', (e) => getComputedStyle(e).backgroundImage + getComputedStyle(e).backgroundColor);
    assert.ok(/rgb\(164, 22, 26\)|rgb\(127, 16, 20\)/.test(bg), `stylesheet applied to the header (${bg})`);
    await shot(page, 'a-home-zh');
    assertNoProblems(page);
    await context.close();
  }],

  ['data officer signs in and lands on the dashboard', async () => {
    const { page } = officer;
    await signIn(page, OFFICER.username);
    assert.equal(new URL(page.url()).pathname, '/');
    assert.match(await page.textContent('h1'), /工作台/);
    assert.match(await page.textContent('.who'), /部门数据专员/);
    assert.match(await page.textContent('.who'), new RegExp(OFFICER.org));
    const values = await page.$$eval('.stat-value', (els) => els.map((e) => Number(e.textContent.trim())));
    assert.equal(values.length, 3, 'datasets, organisations, own datasets');
    assert.ok(values.every((v) => Number.isInteger(v) && v > 0), `real counts: ${values}`);
    assert.ok(await page.isVisible('nav.mainnav a[href="/catalog"]'));
    assert.ok(await page.isVisible('nav.mainnav a[href="/orgs"]'));
    assert.equal(await page.$('nav.mainnav a[href="/audit"]'), null, 'audit is for platform admins');
    await shot(page, 'b-dashboard');
    assertNoProblems(page);
  }],

  ['catalog search for 人口 and the 户籍人口 dataset page', async () => {
    const { page } = officer;
    await page.click('nav.mainnav a[href="/catalog"]');
    await page.waitForURL(/\/catalog$/);
    await page.fill('#q', '人口');
    await Promise.all([page.waitForURL(/q=/), page.click('.search-row button')]);
    assert.match(await page.textContent('#result-count'), /[1-9]/);
    await shot(page, 'c1-catalog-search');
    const link = page.locator('table.data a', { hasText: /^户籍人口$/ }).first();
    assert.ok(await link.count(), '户籍人口 is in the results');
    await Promise.all([page.waitForURL(/\/catalog\/[^/?]+$/), link.click()]);
    assert.match(await page.textContent('h1'), /户籍人口/);
    const schema = await page.textContent('table.schema');
    assert.match(schema, /公民身份号码|身份号码/);
    assert.ok(await page.locator('table.schema .sensitive').count() > 0, 'the 敏感 marker');
    assert.match(await page.textContent('table.schema .sensitive'), /敏感/);
    assert.match(await page.textContent('main'), /ds_[a-z0-9_]+_v\d+/, 'the SQL table name');
    await page.click('details.schema-json summary');
    assert.match(await page.textContent('details.schema-json pre'), /"fields"/);
    await shot(page, 'c2-dataset');
    assertNoProblems(page);
  }],

  ['organisation page', async () => {
    const { page } = officer;
    await page.click('nav.mainnav a[href="/orgs"]');
    await page.waitForURL(/\/orgs$/);
    assert.match(await page.textContent('table.org-tree'), /320400/);
    await shot(page, 'd1-orgs');
    const link = page.locator('table.org-tree a', { hasText: OFFICER.org }).first();
    await Promise.all([page.waitForURL(/\/orgs\/[^/]+$/), link.click()]);
    assert.match(await page.textContent('h1'), new RegExp(OFFICER.org));
    assert.match(await page.textContent('main'), /户籍人口/, 'lists the datasets it provides');
    await shot(page, 'd2-org');
    assertNoProblems(page);
  }],

  ['switch to English', async () => {
    const { page } = officer;
    await clickAndWait(page, 'a.lang-switch');
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    assert.ok(!new URL(page.url()).search.includes('lang='), 'the parameter is dropped after the switch');
    const nav = await page.textContent('nav.mainnav');
    assert.match(nav, /Catalog/);
    assert.match(nav, /Organisations/);
    assert.match(await page.textContent('.who'), /Department data officer/);
    await shot(page, 'e-english');
    await page.goto(`${BASE}/?lang=zh`);
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    assertNoProblems(page);
  }],

  ['catalog at 375px has no horizontal overflow', async () => {
    const cookies = await officer.context.cookies();
    const { context, page } = await newPage({ width: 375, height: 812 });
    await context.addCookies(cookies);
    await page.goto(`${BASE}/catalog`);
    assert.match(await page.textContent('h1'), /政务信息资源目录/);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375 + 1, `document is ${width}px wide at 375px`);
    await shot(page, 'f1-catalog-375');
    await page.goto(`${BASE}/catalog/${await firstDatasetCode(page)}`);
    const w2 = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(w2 <= 375 + 1, `dataset page is ${w2}px wide at 375px`);
    await shot(page, 'f2-dataset-375');
    assertNoProblems(page);
    await context.close();
  }],

  ['sign out', async () => {
    const { page } = officer;
    await page.goto(`${BASE}/`);
    await clickAndWait(page, 'form.logout button');
    assert.equal(new URL(page.url()).pathname, '/');
    assert.ok(await page.isVisible('main a[href="/login"]'), 'signed out: the welcome page again');
    await page.goto(`${BASE}/catalog`);
    assert.equal(new URL(page.url()).pathname, '/login', 'the catalog needs signing in again');
    assert.equal(new URL(page.url()).searchParams.get('next'), '/catalog');
    await shot(page, 'g-signed-out');
    assertNoProblems(page);
  }],

  ['a citizen is refused the catalog', async () => {
    const { context, page } = await newPage();
    await signIn(page, CITIZEN.username);
    assert.match(await page.textContent('.who'), /办事群众/);
    assert.equal(await page.$('nav.mainnav a[href="/catalog"]'), null, 'no catalog link for citizens');
    assert.match(await page.textContent('main'), /我的服务/);
    await shot(page, 'h1-citizen-home');
    const resp = await page.goto(`${BASE}/catalog`);
    assert.equal(resp.status(), 403);
    assert.match(await page.textContent('main'), /政务信息资源目录仅面向政务人员/);
    assert.match(await page.textContent('main'), /403/);
    await shot(page, 'h2-citizen-403');
    assertNoProblems(page);
    await context.close();
  }],
];

async function firstDatasetCode(page) {
  const href = await page.getAttribute('table.data tbody a[href^="/catalog/"]', 'href');
  return href.replace('/catalog/', '');
}

let passed = 0;
let failed = 0;
for (const [name, run] of journeys) {
  try {
    await run();
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${e && e.message ? e.message.split('\n')[0] : e}`);
    if (process.env.VERBOSE) console.log(e);
  }
}
await browser.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
