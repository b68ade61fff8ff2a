// Load generator: real Socket.IO clients (socket.io-client, the package the browser uses)
// against the chat or the bare relay, driven by a JSON spec; one JSON line per result.
//
//   node bench/loadgen/loadgen.mjs spec.json
//
// Chat mode registers and logs in every user through the real forms (CSRF token and session
// cookie), connects with the session cookie, opens chats and sends. Relay mode connects
// without login. Both then run the same scenario:
//   rates   groups of `group_size` users, every user sending in turn; a sweep of offered
//           rates (messages/s), each step measured send to delivery at every other member.
//   fanout  every user in one chat (General Talk, id 1); one sender; time to the last member.
//   hold    open `stages` sockets in turn; the server's memory at each stage.
// Every loop is bounded in count and time: `timeout_seconds` ends the run whatever happens.
//
// Against several workers behind nginx (sticky by client address), `source_addresses` gives
// each user a loopback address of its own (127.0.x.y) for its logins and sockets, as
// machines on a LAN would have; `server_pids` are the workers (their CPU counts as the
// server's) and `cpu_groups` names other processes whose CPU is reported on its own
// (nginx, Redis, PostgreSQL).

import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { io } from 'socket.io-client';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const chatMode = spec.mode === 'chat';
const clockTicks = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux

// -- output -----------------------------------------------------------------------------

function out(record) {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

function note(text) {
  process.stderr.write(`[loadgen ${spec.mode}/${spec.scenario}] ${text}\n`);
}

const guard = setTimeout(() => {
  out({ event: 'error', error: `run exceeded ${spec.timeout_seconds} s` });
  process.exit(3);
}, spec.timeout_seconds * 1000);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// -- the server's processes, read from /proc (same machine) -----------------------------

const serverPids = spec.server_pids || [spec.server_pid];

// utime + stime; with `reaped`, plus cutime + cstime: the CPU of children that ended and
// were waited for (PostgreSQL's backends for connections that closed).
function cpuSecondsOf(pid, reaped = false) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const own = Number(fields[11]) + Number(fields[12]);
  return (reaped ? own + Number(fields[13]) + Number(fields[14]) : own) / clockTicks;
}

function serverCpuSeconds() {
  return serverPids.reduce((sum, pid) => sum + cpuSecondsOf(pid), 0);
}

function serverRssKib() {
  let total = 0;
  for (const pid of serverPids) {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = status.match(/^VmRSS:\s+(\d+) kB/m);
    if (!match) return null;
    total += Number(match[1]);
  }
  return total;
}

// A group of processes whose CPU is reported beside the server's: {tree: [pid, ...]} is
// those processes and their descendants (nginx's master and its workers), {comm: "name"}
// every process of that name (PostgreSQL forks one per connection). Each counts with the
// CPU of its children that ended (so a backend that lived less than a step still counts,
// in its parent's figure).
function readOr(path, fallback) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback; // the process ended meanwhile
  }
}

function groupPids(group) {
  if (group.comm) {
    return readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name) && readOr(`/proc/${name}/comm`, '').trim() === group.comm)
      .map(Number);
  }
  const found = [];
  const queue = [...group.tree];
  while (queue.length && found.length < 10000) {
    const pid = queue.shift();
    found.push(pid);
    queue.push(...readOr(`/proc/${pid}/task/${pid}/children`, '').split(' ').filter(Boolean).map(Number));
  }
  return found;
}

// CPU seconds of each process of each group, now: {group: Map(pid -> seconds)}.
function groupCpu() {
  const groups = {};
  for (const [name, group] of Object.entries(spec.cpu_groups || {})) {
    groups[name] = new Map();
    for (const pid of groupPids(group)) {
      try {
        groups[name].set(pid, cpuSecondsOf(pid, true));
      } catch {
        // ended between the listing and the read
      }
    }
  }
  return groups;
}

// CPU seconds the whole machine spent busy (all cores), from /proc/stat.
function machineBusySeconds() {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = fields.slice(1).map(Number);
  return (user + nice + system + irq + softirq + steal) / clockTicks;
}

// CPU use over an interval, in % of one core: the server's (all its workers together), each
// group's, the generator's, and everyone else's on the machine (other work running beside
// the benchmark makes its figures noisy). A process of a group that started during the
// interval counts from zero; one that ended during it counts in its parent once reaped.
function cpuMeter() {
  const start = {
    wall: performance.now(),
    server: serverCpuSeconds(),
    groups: groupCpu(),
    own: process.cpuUsage(),
    machine: machineBusySeconds(),
  };
  return () => {
    const wall = (performance.now() - start.wall) / 1000;
    const ownUsage = process.cpuUsage(start.own);
    const own = (ownUsage.user + ownUsage.system) / 1e6;
    const server = serverCpuSeconds() - start.server;
    const groups = {};
    let grouped = 0;
    for (const [name, now] of Object.entries(groupCpu())) {
      let seconds = 0;
      for (const [pid, cpu] of now) seconds += cpu - (start.groups[name].get(pid) ?? 0);
      groups[`${name}_cpu_seconds`] = round(seconds, 3);
      groups[`${name}_cpu_pct`] = round((100 * seconds) / wall);
      grouped += seconds;
    }
    const machine = machineBusySeconds() - start.machine;
    return {
      server_cpu_seconds: round(server, 3),
      server_cpu_pct: round((100 * server) / wall),
      ...groups,
      loadgen_cpu_pct: round((100 * own) / wall),
      others_cpu_pct: round(Math.max(0, (100 * (machine - server - grouped - own)) / wall)),
    };
  };
}

// -- statistics -------------------------------------------------------------------------

function round(value, digits = 1) {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function percentiles(values) {
  if (values.length === 0) return { count: 0, p50: null, p95: null, p99: null, max: null };
  const sorted = Float64Array.from(values).sort();
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return {
    count: sorted.length,
    p50: round(at(0.5), 2),
    p95: round(at(0.95), 2),
    p99: round(at(0.99), 2),
    max: round(sorted[sorted.length - 1], 2),
  };
}

// -- HTTP: the real forms ---------------------------------------------------------------

// One HTTP request from `localAddress` (if given); no redirects followed.
function httpRequest(url, { method = 'GET', headers = {}, body = null, localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, headers, localAddress }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode,
          setCookies: response.headers['set-cookie'] || [],
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      response.on('error', reject);
    });
    request.setTimeout(spec.ack_timeout_ms, () => request.destroy(new Error(`${method} ${url} timed out`)));
    request.on('error', reject);
    request.end(body);
  });
}

class Browser {
  constructor(name, localAddress) {
    this.name = name;
    this.localAddress = localAddress; // undefined: the system's choice (127.0.0.1)
    this.cookies = new Map();
  }

  cookieHeader() {
    return [...this.cookies].map(([key, value]) => `${key}=${value}`).join('; ');
  }

  async request(path, options = {}) {
    const response = await httpRequest(spec.url + path, {
      ...options,
      // A connection per request: none is left open to be counted as a socket.
      headers: { ...(options.headers || {}), Cookie: this.cookieHeader(), Connection: 'close' },
      localAddress: this.localAddress,
    });
    for (const line of response.setCookies) {
      const [pair] = line.split(';');
      const cut = pair.indexOf('=');
      this.cookies.set(pair.slice(0, cut).trim(), pair.slice(cut + 1).trim());
    }
    return response;
  }

  async postForm(path, fields) {
    const page = (await this.request(path)).text;
    const input = page.match(/<input[^>]*name="csrf_token"[^>]*>/);
    if (!input) throw new Error(`${path} has no CSRF token`);
    const token = input[0].match(/value="([^"]+)"/)[1];
    const body = new URLSearchParams({ ...fields, csrf_token: token }).toString();
    const response = await this.request(path, {
      method: 'POST',
      body,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    if (response.status !== 303) throw new Error(`POST ${path} answered ${response.status}`);
  }

  async register(password) {
    await this.postForm('/register', { username: this.name, password, confirmation: password });
  }

  async login(password) {
    await this.postForm('/login', { username: this.name, password });
  }
}

async function inBatches(count, concurrency, work) {
  let next = 0;
  const errors = [];
  async function worker() {
    while (next < count) {
      const index = next++;
      try {
        await work(index);
      } catch (error) {
        errors.push(`${index}: ${error.message}`);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return errors;
}

// -- sockets ----------------------------------------------------------------------------

function connectSocket(cookie, localAddress) {
  return new Promise((resolve, reject) => {
    const socket = io(spec.url, {
      transports: ['websocket'],
      extraHeaders: cookie ? { Cookie: cookie } : {},
      localAddress, // passed to the WebSocket's TCP connection
      reconnection: false,
      forceNew: true,
      timeout: 20000,
    });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (error) => {
      socket.close();
      reject(error);
    });
  });
}

async function call(socket, event, payload) {
  const answer = await socket.timeout(spec.ack_timeout_ms).emitWithAck(event, payload);
  if (!answer || answer.ok !== true) {
    throw new Error(`${event}: ${answer ? answer.error : 'no answer'}`);
  }
  return answer;
}

async function setUpUsers() {
  const started = performance.now();
  const addresses = spec.source_addresses || [];
  const browsers = Array.from(
    { length: spec.users },
    (_, index) =>
      new Browser(
        `${spec.user_prefix}${index}`,
        addresses.length ? addresses[index % addresses.length] : undefined,
      ),
  );
  if (chatMode) {
    const errors = await inBatches(browsers.length, spec.setup_concurrency, async (index) => {
      if (spec.register) await browsers[index].register(spec.password);
      await browsers[index].login(spec.password);
    });
    if (errors.length) throw new Error(`login failed for ${errors.length}: ${errors[0]}`);
  }
  note(`${browsers.length} users ready in ${round((performance.now() - started) / 1000)} s`);
  return browsers;
}

// Each entry of `sockets`: {socket, user, index}.
async function connectAll(browsers, count, sockets) {
  const started = performance.now();
  const first = sockets.length;
  const errors = await inBatches(count - first, spec.setup_concurrency, async (offset) => {
    const index = first + offset;
    const user = index % browsers.length;
    const socket = await connectSocket(
      chatMode ? browsers[user].cookieHeader() : null,
      browsers[user].localAddress,
    );
    sockets[index] = { socket, user, index };
  });
  if (errors.length) throw new Error(`${errors.length} sockets refused: ${errors[0]}`);
  const seconds = (performance.now() - started) / 1000;
  note(`${count} sockets connected (${round((count - first) / seconds)}/s)`);
  return seconds;
}

// Wait until the sockets have received nothing for `quietMs` (e.g. presence broadcasts).
async function settle(sockets, quietMs, limitMs) {
  let last = performance.now();
  const touch = () => {
    last = performance.now();
  };
  for (const entry of sockets) entry.socket.onAny(touch);
  const deadline = performance.now() + limitMs;
  while (performance.now() - last < quietMs && performance.now() < deadline) await sleep(50);
  for (const entry of sockets) entry.socket.offAny(touch);
}

// -- delivery tracking ------------------------------------------------------------------

const RECEIVED_EVENTS = ['message_received_from_current_chat', 'message_received_from_another_chat'];

class Tracker {
  constructor() {
    this.messages = new Map(); // client_id -> record
    this.unknown = 0;
  }

  listen(entry) {
    RECEIVED_EVENTS.forEach((event, code) => {
      entry.socket.on(event, (data) => this.receive(entry.index, code, data && data.message));
    });
  }

  track(clientId, record) {
    record.arrivals = new Map(); // socket index -> first arrival (ms)
    record.events = new Set(); // `${socket index}:${event code}`, to count duplicates
    record.duplicates = 0;
    this.messages.set(clientId, record);
  }

  receive(socketIndex, code, message) {
    const now = performance.now();
    const record = message && this.messages.get(message.client_id);
    if (!record) {
      this.unknown += 1;
      return;
    }
    if (socketIndex === record.senderSocket) return; // the chat also tells the sender's list
    const key = `${socketIndex}:${code}`;
    if (record.events.has(key)) record.duplicates += 1;
    else record.events.add(key);
    if (!record.arrivals.has(socketIndex)) {
      record.arrivals.set(socketIndex, now);
      record.step.delivered += 1;
      record.step.lastArrival = now;
      record.step.latencies.push(now - record.sentAt);
    }
  }
}

let clientCounter = 0;
function newClientId() {
  clientCounter += 1;
  return `b${process.pid.toString(36)}x${clientCounter.toString(36)}`;
}

function body(clientId) {
  const text = `bench ${clientId} `;
  return text.padEnd(spec.body_chars, 'lorem ipsum dolor sit amet ');
}

function send(tracker, step, entry, chatId, expected) {
  const clientId = newClientId();
  const sentAt = performance.now();
  tracker.track(clientId, { sentAt, senderSocket: entry.index, step, expected });
  step.sent += 1;
  step.expected += expected;
  entry.socket
    .timeout(spec.ack_timeout_ms)
    .emit('message_sent', { chat_id: chatId, body: body(clientId), client_id: clientId }, (err, ack) => {
      if (err) step.ackTimeouts += 1;
      else if (!ack || ack.ok !== true) {
        step.ackErrors += 1;
        step.firstError = step.firstError || (ack && ack.error);
      } else {
        step.acked += 1;
        step.ackLatencies.push(performance.now() - sentAt);
        step.storedIds.add(ack.message.id);
      }
    });
}

function newStep(rate) {
  return {
    rate,
    sent: 0,
    acked: 0,
    ackErrors: 0,
    ackTimeouts: 0,
    expected: 0,
    delivered: 0,
    latencies: [],
    ackLatencies: [],
    storedIds: new Set(),
    lastArrival: null,
    firstError: null,
  };
}

async function drain(tracker, step, limitMs) {
  const started = performance.now();
  while (
    (step.delivered < step.expected || step.acked + step.ackErrors + step.ackTimeouts < step.sent) &&
    performance.now() - started < limitMs
  ) {
    await sleep(20);
  }
  return (performance.now() - started) / 1000;
}

function finishStep(tracker, step, extra) {
  let duplicates = 0;
  for (const [clientId, record] of tracker.messages) {
    if (record.step !== step) continue;
    duplicates += record.duplicates;
    tracker.messages.delete(clientId);
  }
  const lost = step.expected - step.delivered;
  const latency = percentiles(step.latencies);
  return {
    offered_rate: step.rate,
    sent: step.sent,
    acked: step.acked,
    stored_ids: step.storedIds.size,
    ack_errors: step.ackErrors,
    ack_timeouts: step.ackTimeouts,
    first_error: step.firstError,
    expected_deliveries: step.expected,
    delivered: step.delivered,
    lost,
    duplicates,
    latency_ms: latency,
    ack_latency_ms: percentiles(step.ackLatencies),
    ...extra,
  };
}

// -- scenarios --------------------------------------------------------------------------

async function joinGroups(sockets, groupSize) {
  const groups = [];
  for (let first = 0; first + groupSize <= sockets.length; first += groupSize) {
    groups.push(sockets.slice(first, first + groupSize));
  }
  const chatIds = [];
  const errors = await inBatches(groups.length, spec.setup_concurrency, async (g) => {
    const members = groups[g];
    let chatId = g + 1;
    if (chatMode) {
      const created = await call(members[0].socket, 'create_channel', {
        name: `${spec.user_prefix}-g${g}`,
      });
      chatId = created.chat.id;
      for (const member of members.slice(1)) {
        await call(member.socket, 'join_channel', { chat_id: chatId });
      }
    }
    for (const member of members) await call(member.socket, 'join_chat', { chat_id: chatId });
    chatIds[g] = chatId;
  });
  if (errors.length) throw new Error(`${errors.length} groups failed: ${errors[0]}`);
  return groups.map((members, g) => ({ members, chatId: chatIds[g] }));
}

async function runStep(tracker, senders, rate, seconds) {
  const step = newStep(rate);
  const meter = cpuMeter();
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const started = performance.now();
  const total = Math.round(rate * seconds);
  let turn = 0;
  while (step.sent < total) {
    const due = Math.min(total, Math.floor((rate * (performance.now() - started)) / 1000));
    while (step.sent < due) {
      const { entry, chatId, expected } = senders[turn % senders.length];
      turn += 1;
      send(tracker, step, entry, chatId, expected);
    }
    await sleep(2);
  }
  const sendSeconds = (performance.now() - started) / 1000;
  const drained = await drain(tracker, step, spec.drain_seconds * 1000);
  // Measured after the drain, so the CPU of delivering the step's last messages counts.
  const cpu = meter();
  loopDelay.disable();
  const spanSeconds = step.lastArrival ? (step.lastArrival - started) / 1000 : sendSeconds;
  return finishStep(tracker, step, {
    seconds: round(sendSeconds, 2),
    send_rate: round(step.sent / sendSeconds),
    delivered_per_s: round(step.delivered / Math.max(spanSeconds, sendSeconds)),
    drain_seconds: round(drained, 2),
    loadgen_loop_delay_p99_ms: round(loopDelay.percentile(99) / 1e6, 2),
    server_rss_kib: serverRssKib(),
    server_cpu_us_per_message: round((1e6 * cpu.server_cpu_seconds) / Math.max(step.sent, 1)),
    ...Object.fromEntries(
      Object.keys(spec.cpu_groups || {}).map((name) => [
        `${name}_cpu_us_per_message`,
        round((1e6 * cpu[`${name}_cpu_seconds`]) / Math.max(step.sent, 1)),
      ]),
    ),
    ...cpu,
  });
}

function passes(result) {
  return (
    result.lost === 0 &&
    result.duplicates === 0 &&
    result.ack_errors === 0 &&
    result.ack_timeouts === 0 &&
    result.stored_ids === result.sent &&
    result.latency_ms.p99 !== null &&
    result.latency_ms.p99 <= spec.p99_limit_ms &&
    result.send_rate >= 0.95 * result.offered_rate
  );
}

async function scenarioRates(browsers, sockets) {
  await connectAll(browsers, browsers.length, sockets);
  const groups = await joinGroups(sockets, spec.group_size);
  const tracker = new Tracker();
  sockets.forEach((entry) => tracker.listen(entry));
  await settle(sockets, 500, 10000);
  const senders = [];
  for (const group of groups) {
    for (const entry of group.members) {
      senders.push({ entry, chatId: group.chatId, expected: group.members.length - 1 });
    }
  }
  // Interleave groups so consecutive sends go to different chats.
  senders.sort((a, b) => (a.entry.index % spec.group_size) - (b.entry.index % spec.group_size));
  out({ event: 'ready', groups: groups.length, group_size: spec.group_size, senders: senders.length });
  // Other work on the machine can spoil one step's p99 while the server idles: a failed step
  // is run once more before it counts, and the sweep stops only once the server is busy
  // (or after `max_failures` failed steps in a row, or when p99 passes `give_up_p99_ms`).
  let failures = 0;
  for (const rate of spec.rates) {
    let result = await runStep(tracker, senders, rate, spec.step_seconds);
    result.passed = passes(result);
    if (!result.passed && spec.retry_failed_steps) {
      note(`rate ${rate}/s failed (p99 ${result.latency_ms.p99} ms), once more`);
      await settle(sockets, 300, 5000);
      const first = result;
      result = await runStep(tracker, senders, rate, spec.step_seconds);
      result.passed = passes(result);
      result.first_attempt = {
        sent: first.sent,
        acked: first.acked,
        stored_ids: first.stored_ids,
        ack_errors: first.ack_errors,
        ack_timeouts: first.ack_timeouts,
        first_error: first.first_error,
        latency_ms: first.latency_ms,
        lost: first.lost,
        duplicates: first.duplicates,
        server_cpu_pct: first.server_cpu_pct,
        others_cpu_pct: first.others_cpu_pct,
      };
    }
    out({ event: 'step', ...result });
    note(
      `rate ${rate}/s: p50 ${result.latency_ms.p50} p99 ${result.latency_ms.p99} ms, ` +
        `lost ${result.lost}, server cpu ${result.server_cpu_pct}%, ` +
        `loadgen cpu ${result.loadgen_cpu_pct}%, others ${result.others_cpu_pct}% ` +
        `${result.passed ? 'ok' : 'FAIL'}`,
    );
    failures = result.passed ? 0 : failures + 1;
    const busy = result.server_cpu_pct >= spec.busy_server_cpu_pct;
    if (
      (failures >= spec.stop_after_failures && busy) ||
      failures >= spec.max_failures ||
      result.latency_ms.p99 > spec.give_up_p99_ms
    ) {
      break;
    }
    await settle(sockets, 300, 5000);
  }
  out({ event: 'tracker', unknown_arrivals: tracker.unknown });
}

async function scenarioFanout(browsers, sockets) {
  const connectSeconds = await connectAll(browsers, browsers.length, sockets);
  await inBatches(sockets.length, spec.setup_concurrency, (i) =>
    call(sockets[i].socket, 'join_chat', { chat_id: spec.fanout_chat_id }),
  );
  await settle(sockets, 1000, 60000);
  const tracker = new Tracker();
  sockets.forEach((entry) => tracker.listen(entry));
  const receivers = sockets.length - 1;
  const perMessage = [];
  const meter = cpuMeter();
  for (let m = 0; m < spec.fanout_messages; m += 1) {
    const step = newStep(0);
    send(tracker, step, sockets[0], spec.fanout_chat_id, receivers);
    const record = [...tracker.messages.values()].find((r) => r.step === step);
    await drain(tracker, step, spec.drain_seconds * 1000);
    const times = [...record.arrivals.values()].map((t) => t - record.sentAt).sort((a, b) => a - b);
    const result = finishStep(tracker, step, {});
    perMessage.push({
      first_ms: round(times[0] ?? NaN, 2),
      median_ms: round(times[Math.floor(times.length / 2)] ?? NaN, 2),
      last_ms: round(times[times.length - 1] ?? NaN, 2),
      delivered: result.delivered,
      lost: result.lost,
      duplicates: result.duplicates,
    });
    await sleep(spec.fanout_interval_ms);
  }
  const last = percentiles(perMessage.map((m) => m.last_ms));
  out({
    event: 'fanout',
    members: sockets.length,
    receivers,
    messages: perMessage.length,
    connect_seconds: round(connectSeconds, 2),
    last_member_ms: last,
    median_member_ms: percentiles(perMessage.map((m) => m.median_ms)),
    first_member_ms: percentiles(perMessage.map((m) => m.first_ms)),
    lost: perMessage.reduce((sum, m) => sum + m.lost, 0),
    duplicates: perMessage.reduce((sum, m) => sum + m.duplicates, 0),
    per_message: perMessage,
    ...meter(),
  });
}

async function scenarioHold(browsers, sockets) {
  const baseline = serverRssKib();
  out({ event: 'baseline', server_rss_kib: baseline });
  for (const count of spec.stages) {
    const seconds = await connectAll(browsers, count, sockets);
    if (!chatMode) {
      await inBatches(count, spec.setup_concurrency, async (i) => {
        if (!sockets[i].joined) await call(sockets[i].socket, 'join_chat', { chat_id: 1 });
        sockets[i].joined = true;
      });
    }
    await settle(sockets, 1000, spec.settle_seconds * 1000);
    const rss = serverRssKib();
    const open = sockets.filter((entry) => entry.socket.connected).length;
    out({
      event: 'stage',
      connections: count,
      open,
      connect_seconds: round(seconds, 2),
      server_rss_kib: rss,
      kib_per_open_socket: round((rss - baseline) / Math.max(open, 1), 2),
    });
  }
  // Every socket is still alive: one message in General Talk reaches each of them.
  const tracker = new Tracker();
  sockets.forEach((entry) => tracker.listen(entry));
  const step = newStep(0);
  const open = sockets.filter((entry) => entry.socket.connected);
  const sender = open[0] || sockets[0];
  send(tracker, step, sender, 1, open.length - 1);
  const record = [...tracker.messages.values()][0];
  await drain(tracker, step, spec.drain_seconds * 1000);
  const times = [...record.arrivals.values()].map((t) => t - record.sentAt);
  const result = finishStep(tracker, step, {});
  out({
    event: 'broadcast',
    receivers: open.length - 1,
    delivered: result.delivered,
    lost: result.lost,
    last_ms: times.length ? round(Math.max(...times), 2) : null,
    server_rss_kib: serverRssKib(),
  });
}

// -- main -------------------------------------------------------------------------------

async function main() {
  const browsers = await setUpUsers();
  out({ event: 'users', users: browsers.length, server_rss_kib: serverRssKib() });
  const sockets = [];
  try {
    if (spec.scenario === 'rates') await scenarioRates(browsers, sockets);
    else if (spec.scenario === 'fanout') await scenarioFanout(browsers, sockets);
    else if (spec.scenario === 'hold') await scenarioHold(browsers, sockets);
    else throw new Error(`unknown scenario ${spec.scenario}`);
  } finally {
    for (const entry of sockets) if (entry) entry.socket.close();
  }
  out({ event: 'done' });
}

main().then(
  () => {
    clearTimeout(guard);
    process.exit(0);
  },
  (error) => {
    out({ event: 'error', error: String(error && error.stack ? error.stack : error) });
    process.exit(1);
  },
);
