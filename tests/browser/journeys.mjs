// Browser journeys through the govhub web UI, run in Debian's Chromium by playwright-core.
//
//   GOVHUB_URL=http://127.0.0.1:18080 node tests/browser/journeys.mjs
//
// Expects a server started with `govhub demo` (the synthetic demo city). Prints one
// line per journey, then "N passed, M failed"; exits non-zero on any failure.
// Screenshots go to tests/browser/screenshots/.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
const ADMIN = { username: 'admin' };
const APPROVER = { username: 'gaj-approver' };
const HJRK = 'gaj-hjrk';
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
  // A 403/404 page logs "Failed to load resource" for itself, and Chromium cancels a
  // favicon fetch still in flight when it moves on (net::ERR_ABORTED, seen in CI):
  // neither is the page's fault; everything else counts.
  const real = page.problems.filter((p) => !/status of 40[34]/.test(p) && !/favicon\.svg net::ERR_ABORTED/.test(p));
  assert.deepEqual(real, [], `the browser reported problems: ${real.join('; ')}`);
}

/** A GB 11643 citizen ID number from its first 17 digits (check character appended). */
function idNumber(first17) {
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const s = [...first17].reduce((acc, d, i) => acc + Number(d) * weights[i], 0);
  return first17 + '10X98765432'[s % 11];
}

/** The same number with a check character that is wrong. */
function wrongCheck(id) {
  return id.slice(0, 17) + (id[17] === '0' ? '1' : '0');
}

/** Values for the 户籍人口 fields; unknown fields stay empty. */
function hjrkRow(fields, id, name) {
  const birth = `${id.slice(6, 10)}-${id.slice(10, 12)}-${id.slice(12, 14)}`;
  const known = {
    sfzh: id, xm: name, xb: Number(id[16]) % 2 ? '男' : '女', mz: '汉族', csrq: birth, hjdz_qh: '320402',
    hjdz: '常州市天宁区青果巷8号', sjhm: '13815001234', hyzk: '已婚', rkzt: '正常', gxsj: '',
  };
  return fields.map((f) => known[f] ?? '').join(',');
}

async function noOverflow(page, what) {
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 375 + 1, `${what} is ${width}px wide at 375px`);
}

// Shared between the delivery journeys.
const delivered = { ids: [], report: '', fields: [] };

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

  ['data officer uploads a CSV to 户籍人口 and reads the report', async () => {
    const { page } = officer;
    await page.goto(`${BASE}/catalog/${HJRK}`);
    assert.match(await page.textContent('h1'), /户籍人口/);
    assert.ok(await page.isVisible('#deliveries form.upload-form'), 'the upload form is shown to the provider');
    const fields = await page.$$eval('table.schema tbody tr td:first-child code', (els) => els.map((e) => e.textContent.trim()));
    assert.ok(fields.includes('sfzh') && fields.includes('xm'), `schema fields: ${fields}`);
    // Birth dates from the run's clock so that repeated runs deliver new people.
    const t = Date.now();
    const seq = String(t % 1000).padStart(3, '0');
    const day = String((Math.floor(t / 1000) % 28) + 1).padStart(2, '0');
    const good1 = idNumber(`32040219860${(t % 9) + 1}${day}${seq}`);
    const good2 = idNumber(`32041119920${((t + 3) % 9) + 1}${day}${seq}`);
    const bad = wrongCheck(idNumber(`32040419751${(t % 3)}${day}${seq}`));
    const csv = [fields.join(','), hjrkRow(fields, good1, '周晓明'), hjrkRow(fields, good2, '陈雨桐'), hjrkRow(fields, bad, '吴国平')].join('\n') + '\n';
    const file = join(tmpdir(), `govhub-journey-${t}.csv`);
    writeFileSync(file, csv);
    await shot(page, 'i1-dataset-delivery');
    await page.selectOption('#mode', 'incremental');
    await page.selectOption('#encoding', 'auto');
    await page.setInputFiles('#file', file);
    await Promise.all([page.waitForURL(/\/deliveries\/\d+$/), page.click('form.upload-form button[type=submit]')]);
    assert.match(await page.textContent('h1'), /交付报告/);
    assert.equal((await page.textContent('#stat-read')).trim(), '3');
    assert.equal((await page.textContent('#stat-accepted')).trim(), '2');
    assert.equal((await page.textContent('#stat-quarantined')).trim(), '1');
    assert.match(await page.textContent('h1 .status'), /成功/);
    const q = await page.textContent('table.quarantine');
    assert.match(q, /id-number-check/);
    assert.ok(!q.includes(bad), 'the wrong ID number is shown masked');
    assert.ok(await page.isVisible('svg.bar-chart rect.seg-quarantined'), 'the stacked bar');
    const csvHref = await page.getAttribute('#quarantine-csv', 'href');
    const download = await page.request.get(`${BASE}${csvHref}`);
    assert.equal(download.status(), 200);
    assert.match(download.headers()['content-type'], /text\/csv/);
    assert.match(await download.text(), /id-number-check/);
    await shot(page, 'i2-delivery-report');
    delivered.ids = [good1, good2];
    delivered.fields = fields;
    delivered.report = new URL(page.url()).pathname;
    assertNoProblems(page);

    const { context, page: small } = await newPage({ width: 375, height: 812 });
    await context.addCookies(await officer.context.cookies());
    await small.goto(`${BASE}${delivered.report}`);
    await noOverflow(small, 'the delivery report');
    await shot(small, 'i3-delivery-report-375');
    await small.goto(`${BASE}/catalog/${HJRK}`);
    await noOverflow(small, 'the dataset page with the upload form');
    assertNoProblems(small);
    await context.close();
  }],

  ['records browser and one record\'s history', async () => {
    const { page } = officer;
    await page.goto(`${BASE}/catalog/${HJRK}`);
    if (delivered.ids.length) {
      // Deliver the first person again with another name: a second version.
      const row = hjrkRow(delivered.fields, delivered.ids[0], '周晓明').replace('已婚', '离婚');
      const file = join(tmpdir(), `govhub-journey-${Date.now()}-2.csv`);
      writeFileSync(file, `${delivered.fields.join(',')}\n${row}\n`);
      await page.setInputFiles('#file', file);
      await Promise.all([page.waitForURL(/\/deliveries\/\d+$/), page.click('form.upload-form button[type=submit]')]);
      assert.equal((await page.textContent('#stat-accepted')).trim(), '1');
      assert.match(await page.textContent('.stat-row'), /更新 1/);
      await page.click(`.crumbs a[href="/catalog/${HJRK}"]`);
      await page.waitForURL(new RegExp(`/catalog/${HJRK}$`));
    }
    await Promise.all([page.waitForURL(/\/records$/), page.click(`a[href="/catalog/${HJRK}/records"]`)]);
    assert.match(await page.textContent('h1'), /数据记录/);
    assert.ok(await page.locator('table.records tbody tr').count() >= 1, 'records are listed');
    await shot(page, 'j1-records');
    const id = delivered.ids[0] || (await page.textContent('table.records tbody tr td a code')).trim();
    await page.selectOption('#field', 'sfzh');
    await page.selectOption('#op', 'eq');
    await page.fill('#value', id);
    await Promise.all([page.waitForURL(/value=/), page.click('form.filters button[type=submit]')]);
    assert.equal(await page.locator('table.records tbody tr').count(), 1, 'the filter finds exactly that record');
    await Promise.all([page.waitForURL(/\/records\/[^/]+$/), page.click('table.records tbody a')]);
    assert.match(await page.textContent('h1'), new RegExp(id));
    assert.ok(await page.locator('table.versions tbody tr').count() >= 1, 'at least one version');
    assert.match(await page.textContent('table.versions'), /新增/);
    if (delivered.report) {
      assert.ok(await page.locator(`table.versions a[href="${delivered.report}"]`).count(), 'links to the delivery');
      assert.equal(await page.locator('table.versions tbody tr').count(), 2, 'two versions after the second delivery');
      assert.match(await page.textContent('table.history td.changed'), /离婚/, 'the changed value is highlighted');
    }
    await shot(page, 'j2-record-history');
    assertNoProblems(page);
  }],

  ['platform admin opens the compliance dashboard', async () => {
    const { context, page } = await newPage();
    await signIn(page, ADMIN.username);
    await Promise.all([page.waitForURL(/\/compliance$/), page.click('nav.mainnav a[href="/compliance"]')]);
    assert.match(await page.textContent('h1'), /应归尽归/);
    const values = await page.$$eval('.compliance-top .stat-value', (els) => els.map((e) => Number(e.textContent.trim())));
    assert.equal(values.length, 4, '纳入清单, 按时, 逾期, 从未交付');
    assert.ok(values.every((v) => Number.isInteger(v) && v >= 0), `counts: ${values}`);
    assert.equal(values[0], values[1] + values[2] + values[3], 'the states add up to the list');
    assert.ok(await page.isVisible('svg.donut'), 'the donut chart');
    assert.ok(await page.isVisible('#responsibility-form select#r-dataset'), 'admins maintain the list');
    assert.equal(await page.locator('table.compliance tbody tr').count(), Math.max(values[0], 1));
    await shot(page, 'k1-compliance');
    const cookies = await context.cookies();
    const { context: c2, page: small } = await newPage({ width: 375, height: 812 });
    await c2.addCookies(cookies);
    await small.goto(`${BASE}/compliance`);
    await noOverflow(small, 'the compliance dashboard');
    await shot(small, 'k2-compliance-375');
    assertNoProblems(page);
    assertNoProblems(small);
    await c2.close();
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

  ['the approver approves a request with fewer fields and sees it granted', async () => {
    const { context, page } = await newPage();
    await signIn(page, APPROVER.username);
    await clickAndWait(page, 'nav.mainnav a[href="/sharing/inbox"]');
    assert.equal(new URL(page.url()).pathname, '/sharing/inbox');
    assert.match(await page.textContent('h1'), /审批待办/);
    // The demo's 民政局 app waits for 公安局 with a request on 户籍人口.
    const item = page.locator('li.request-item', { hasText: '最低生活保障核对系统' }).first();
    assert.ok(await item.isVisible(), 'the pending request is in the inbox');
    assert.match(await item.textContent(), /户籍人口/);
    assert.match(await item.textContent(), /敏感/);
    await shot(page, 'l1-inbox');
    await Promise.all([page.waitForURL(/\/sharing\/requests\/\d+$/), item.locator('a.btn-primary').click()]);
    const requestUrl = page.url();
    const asked = await page.$$eval('input[name=fields]', (els) => els.map((e) => e.value));
    assert.ok(asked.length >= 3, `fields offered: ${asked}`);
    // Withhold the mobile number (and anything else past the first three fields).
    const keep = asked.filter((f) => f !== 'sjhm').slice(0, 3);
    for (const f of asked) {
      if (!keep.includes(f)) await page.uncheck(`input[name=fields][value="${f}"]`);
    }
    await page.fill('#reason', '按最小必要原则同意提供核对所需字段');
    await shot(page, 'l2-decision-form');
    await Promise.all([page.waitForURL(/\/sharing\/inbox\?decided=/), page.click('#approve')]);
    assert.match(await page.textContent('#outcome'), /已授权/);
    await shot(page, 'l3-inbox-decided');
    await page.goto(requestUrl, { waitUntil: 'networkidle' });
    assert.match(await page.textContent('#request-status'), /已授权/);
    const granted = await page.$$eval('#granted-fields [data-field]', (els) => els.map((e) => e.dataset.field));
    assert.deepEqual([...granted].sort(), [...keep].sort(), 'exactly the fields left ticked');
    assert.equal(await page.$('#decision'), null, 'no decision form once decided');
    // The grant shows among the dataset's consumers.
    await page.goto(`${BASE}/catalog/${HJRK}`, { waitUntil: 'networkidle' });
    assert.match(await page.textContent('#consumers'), /最低生活保障核对系统/);
    assert.ok(await page.isVisible('#who-read'), 'link to who read this data');
    // The inbox at 375 px.
    const { context: c2, page: small } = await newPage({ width: 375, height: 812 });
    await signIn(small, APPROVER.username);
    // Let the favicon finish between pages (an aborted load would count as a problem).
    await small.goto(`${BASE}/sharing/inbox`, { waitUntil: 'networkidle' });
    await noOverflow(small, 'the inbox');
    await small.goto(requestUrl, { waitUntil: 'networkidle' });
    await noOverflow(small, 'a request');
    await shot(small, 'l4-request-375');
    assertNoProblems(small);
    await c2.close();
    assertNoProblems(page);
    await context.close();
  }],

  ['an app reads masked records with a new token and the admin sees it on the usage page', async () => {
    const { context, page } = await newPage();
    await signIn(page, 'rsj-dev');
    await page.goto(`${BASE}/sharing/apps`, { waitUntil: 'networkidle' });
    const app = page.locator('#apps table.data a', { hasText: /^社保待遇资格认证系统$/ }).first();
    await Promise.all([page.waitForURL(/\/sharing\/apps\/\d+$/), app.click()]);
    await clickAndWait(page, '#create-token');
    const token = (await page.textContent('#token-secret')).trim();
    assert.match(token, /^gha_/);
    const auth = { Authorization: `Bearer ${token}` };
    const resp = await page.request.get(`${BASE}/api/v1/share/${HJRK}/records?limit=3`, { headers: auth });
    assert.equal(resp.status(), 200, await resp.text());
    const { items } = await resp.json();
    assert.equal(items.length, 3);
    for (const r of items) {
      assert.match(r.sfzh, /^\d{6}\*{8}\d{3}[\dX]$/, `ID number masked: ${r.sfzh}`);
      assert.ok(!('sjhm' in r) && !('hjdz' in r), 'no field outside the grant');
    }
    const refused = await page.request.get(`${BASE}/api/v1/share/${HJRK}/records?limit=1&sjhm=eq:1`, { headers: auth });
    assert.equal(refused.status(), 400, 'a filter on a field outside the grant');
    await shot(page, 'm1-token-once');
    await context.close();

    const { context: c2, page: admin } = await newPage();
    await signIn(admin, ADMIN.username);
    await clickAndWait(admin, 'nav.mainnav a[href="/sharing/usage"]');
    assert.match(await admin.textContent('h1'), /共享接口使用情况/);
    const row = admin.locator('#usage tbody tr', { hasText: '社保待遇资格认证系统' }).first();
    assert.ok(await row.count(), 'a row for the app');
    const cells = await row.locator('td.num').allTextContents();
    assert.ok(Number(cells[0]) >= 2 && Number(cells[1]) >= 3 && Number(cells[2]) >= 1, `requests, rows, errors: ${cells}`);
    const bar = await row.locator('svg.usage-bar rect.seg-ok').getAttribute('width');
    assert.ok(Number(bar) > 0, `the bar is drawn (${bar})`);
    assert.ok(Number(await admin.textContent('#commits')) > 0, 'the audit writer has committed');
    await shot(admin, 'm2-usage');
    assertNoProblems(admin);
    await c2.close();
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

  ['an enterprise sees its licences with QR codes and the verify page says valid', async () => {
    const { context, page } = await newPage();
    await signIn(page, 'enterprise');
    await page.goto(`${BASE}/me`, { waitUntil: 'networkidle' });
    const main = await page.textContent('main');
    assert.match(main, /营业执照/);
    // Every QR code is a real image the browser decoded.
    const qrs = await page.$$eval('main img[src*="qr"]', (imgs) => imgs.map((i) => i.naturalWidth));
    assert.ok(qrs.length >= 1 && qrs.every((w) => w > 0), `QR codes: ${qrs}`);
    await shot(page, 'i1-enterprise-licences');
    // The signed file downloads.
    const file = await page.getAttribute('main a[href^="/me/licences/"]', 'href');
    const got = await page.request.get(`${BASE}${file}`);
    assert.equal(got.status(), 200);
    assert.ok((await got.body()).length > 200, 'a signed licence file');
    // Its QR code leads to the public page: valid, issuer named, holder masked.
    const verify = await page.getAttribute('main a[href^="/verify/"]', 'href');
    const anonymous = await newPage();
    const resp = await anonymous.page.goto(`${BASE}${verify}`, { waitUntil: 'networkidle' });
    assert.equal(resp.status(), 200);
    assert.match(await anonymous.page.textContent('.badge'), /有效/);
    assert.match(await anonymous.page.textContent('main'), /市场监督管理局|生态环境局/);
    await shot(anonymous.page, 'i2-verify-valid');
    assertNoProblems(anonymous.page);
    await anonymous.context.close();
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
