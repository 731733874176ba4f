// The OISP sensor's live dashboard. Plain script, no build step, nothing
// loaded from elsewhere. Every piece of event text reaches the page as a
// text node (textContent / createTextNode): events carry prompts, responses
// and command lines that may hold markup, and none of it may become markup.
(function (root) {
  'use strict';

  var MAX_INTERACTIONS = 5000; // kept in memory
  var MAX_SYSTEM = 5000;
  var MAX_ROWS = 500; // rendered at once, newest first

  // el makes an element with a class and children: strings become text
  // nodes, so no caller can turn event text into markup.
  function el(doc, tag, cls, children) {
    var e = doc.createElement(tag);
    if (cls) e.className = cls;
    if (children !== undefined && children !== null) {
      if (!Array.isArray(children)) children = [children];
      for (var i = 0; i < children.length; i++) {
        var c = children[i];
        if (c === undefined || c === null || c === '') continue;
        e.appendChild(typeof c === 'object' ? c : doc.createTextNode(String(c)));
      }
    }
    return e;
  }

  function str(v) { return v === undefined || v === null ? '' : String(v); }

  function data(ev) { return (ev && ev.data) || {}; }

  // relatedID returns the id of the event ev names with relationship rel.
  function relatedID(ev, rel) {
    var r = ev.related_events || [];
    for (var i = 0; i < r.length; i++) if (r[i].relationship === rel) return r[i].event_id;
    return '';
  }

  function isSystem(type) {
    return /^(process|network|file)\./.test(type);
  }

  // Model pairs each ai.request with its ai.response and nests the tool
  // calls and results under them; system events are kept apart.
  function Model() {
    this.interactions = new Map(); // key -> interaction, in arrival order
    this.keyOfEvent = new Map(); // event_id -> interaction key
    this.system = [];
    this.providers = new Set();
  }

  function newInteraction(key, seq) {
    return { key: key, seq: seq, req: null, resp: null, embedding: null, toolCalls: [], toolResults: [], chunks: 0, events: [], text: '', version: 0 };
  }

  // keyFor finds the interaction an AI event belongs to: its request_id,
  // else the interaction of an event it names, else its own id.
  Model.prototype.keyFor = function (ev) {
    var d = data(ev);
    if (d.request_id) return d.request_id;
    var rels = ['parent', 'caused_by', 'related'];
    for (var i = 0; i < rels.length; i++) {
      var id = relatedID(ev, rels[i]);
      if (id && this.keyOfEvent.has(id)) return this.keyOfEvent.get(id);
    }
    return 'event:' + ev.event_id;
  };

  // add takes one event; it returns the interaction it touched, or null
  // for a system event.
  Model.prototype.add = function (seq, ev) {
    var type = str(ev.event_type);
    var json = JSON.stringify(ev).toLowerCase();
    if (isSystem(type) || type.indexOf('ai.') !== 0 && type.indexOf('agent.') !== 0) {
      this.system.push({ seq: seq, ev: ev, text: json });
      if (this.system.length > MAX_SYSTEM) this.system.splice(0, this.system.length - MAX_SYSTEM);
      return null;
    }
    var key = this.keyFor(ev);
    var it = this.interactions.get(key);
    if (!it) {
      it = newInteraction(key, seq);
      this.interactions.set(key, it);
      if (this.interactions.size > MAX_INTERACTIONS) {
        var oldest = this.interactions.keys().next().value;
        this.interactions.delete(oldest);
      }
    }
    if (ev.event_id) this.keyOfEvent.set(ev.event_id, key);
    if (this.keyOfEvent.size > 8 * MAX_INTERACTIONS) this.keyOfEvent.clear();
    switch (type) {
      case 'ai.request': it.req = ev; break;
      case 'ai.response': it.resp = ev; break;
      case 'ai.embedding': it.embedding = ev; break;
      case 'agent.tool_call': it.toolCalls.push(ev); break;
      case 'agent.tool_result': it.toolResults.push(ev); break;
      case 'ai.streaming_chunk': it.chunks++; break;
    }
    if (type !== 'ai.streaming_chunk') it.events.push(ev);
    it.version++;
    it.text += '\n' + json;
    var p = providerOf(it);
    if (p) this.providers.add(p);
    return it;
  };

  function providerOf(it) {
    var d = data(it.req || it.resp || it.embedding);
    var p = d.provider || {};
    return str(p.id || p.name);
  }

  function processOf(ev) {
    var p = (ev && ev.process) || {};
    var name = p.name || (p.exe ? String(p.exe).split('/').pop() : '');
    if (!name && !p.pid) return '';
    return str(name) + (p.pid ? ' (' + p.pid + ')' : '');
  }

  function clock(ts) {
    if (!ts) return '';
    var t = new Date(ts);
    if (isNaN(t.getTime())) return str(ts);
    function pad(n, w) { n = String(n); while (n.length < w) n = '0' + n; return n; }
    return pad(t.getHours(), 2) + ':' + pad(t.getMinutes(), 2) + ':' + pad(t.getSeconds(), 2) + '.' + pad(t.getMilliseconds(), 3);
  }

  // summarize is what an interaction's row shows.
  function summarize(it) {
    var first = it.req || it.resp || it.embedding || it.events[0] || {};
    var rq = data(it.req), rs = data(it.resp);
    var model = (rs.model && (rs.model.id || rs.model.name)) || (rq.model && (rq.model.id || rq.model.name)) || '';
    var latency = '';
    if (rs.latency_ms !== undefined) latency = rs.latency_ms + ' ms';
    else if (it.req && it.resp) {
      var ms = new Date(it.resp.ts) - new Date(it.req.ts);
      if (!isNaN(ms)) latency = ms + ' ms';
    }
    var u = rs.usage || {};
    var tokens = '';
    if (u.prompt_tokens !== undefined || u.completion_tokens !== undefined) {
      tokens = str(u.prompt_tokens === undefined ? '?' : u.prompt_tokens) + ' → ' + str(u.completion_tokens === undefined ? '?' : u.completion_tokens);
    } else if (u.total_tokens !== undefined) tokens = str(u.total_tokens);
    var cost = '';
    if (typeof u.total_cost_usd === 'number') cost = '$' + u.total_cost_usd.toFixed(u.total_cost_usd < 0.01 ? 6 : 4);
    else if (u.cost === 'unknown') cost = '?';
    var status = 'pending', statusClass = 'status-pending';
    if (it.resp) {
      var failed = rs.error || rs.success === false || rs.status_code >= 400;
      status = rs.status_code ? String(rs.status_code) : (failed ? 'error' : 'ok');
      if (rs.error) status += ' ' + str(rs.error.message || rs.error.type || rs.error.code);
      else if (rs.finish_reason) status += ' ' + rs.finish_reason;
      statusClass = failed ? 'status-err' : 'status-ok';
    } else if (!it.req) {
      status = 'no request seen';
    }
    var tools = '';
    var nCalls = it.toolCalls.length || rs.tool_calls_count || 0;
    var parts = [];
    if (nCalls) parts.push(nCalls + ' call' + (nCalls === 1 ? '' : 's'));
    if (it.toolResults.length) parts.push(it.toolResults.length + ' result' + (it.toolResults.length === 1 ? '' : 's'));
    tools = parts.join(', ');
    if (rq.streaming || rs.streaming) latency += (latency ? ' ' : '') + '(stream)';
    return {
      time: clock(first.ts), process: processOf(first), provider: providerOf(it), model: str(model),
      latency: latency, tokens: tokens, cost: cost, status: status, statusClass: statusClass, tools: tools
    };
  }

  // renderRow returns the table row of an interaction.
  function renderRow(doc, it, open) {
    var s = summarize(it);
    var tr = el(doc, 'tr', 'row' + (open ? ' open' : ''), [
      el(doc, 'td', '', s.time), el(doc, 'td', '', s.process), el(doc, 'td', '', s.provider),
      el(doc, 'td', '', s.model), el(doc, 'td', '', s.latency), el(doc, 'td', '', s.tokens),
      el(doc, 'td', '', s.cost), el(doc, 'td', s.statusClass, s.status), el(doc, 'td', '', s.tools)
    ]);
    tr.title = 'request ' + it.key;
    return tr;
  }

  function messageBlock(doc, role, content, extra) {
    return el(doc, 'div', 'msg role-' + String(role || 'other').replace(/[^a-z_]/g, ''), [
      el(doc, 'span', 'role', str(role || '?') + (extra ? ' ' + extra : '')), str(content)
    ]);
  }

  function section(doc, title, children) {
    return el(doc, 'div', 'section', [el(doc, 'h3', '', title)].concat(children));
  }

  function rawBlock(doc, ev) {
    var d = el(doc, 'details', '', [el(doc, 'summary', '', str(ev.event_type) + ' ' + str(ev.event_id))]);
    d.appendChild(el(doc, 'pre', 'raw', JSON.stringify(ev, null, 2)));
    return d;
  }

  // renderDetail returns the expanded row of an interaction: the messages,
  // the response, the tools and every event's JSON.
  function renderDetail(doc, it, colSpan) {
    var parts = [];
    var rq = data(it.req), rs = data(it.resp);
    if (it.req) {
      var msgs = (rq.messages || []).map(function (m) {
        return messageBlock(doc, m.role, m.content !== undefined ? m.content : (m.content_length ? '[' + m.content_length + ' characters not captured]' : ''), m.name || m.tool_call_id);
      });
      if (!msgs.length) msgs.push(el(doc, 'div', 'muted', rq.messages_count ? rq.messages_count + ' messages (content not captured)' : 'no messages'));
      if (rq.tools && rq.tools.length) {
        msgs.push(el(doc, 'div', 'muted', 'tools offered: ' + rq.tools.map(function (t) { return str(t.name); }).join(', ')));
      }
      parts.push(section(doc, 'Request' + (rq.endpoint ? ' · ' + rq.endpoint : ''), msgs));
    }
    if (it.resp) {
      var out = [];
      (rs.choices || []).forEach(function (c) {
        if (c.message) out.push(messageBlock(doc, c.message.role || 'assistant', c.message.content, c.finish_reason ? '[' + c.finish_reason + ']' : ''));
      });
      if (rs.thinking && rs.thinking.content) out.push(messageBlock(doc, 'thinking', rs.thinking.content));
      (rs.tool_calls || []).forEach(function (c) {
        out.push(el(doc, 'div', 'tool', ['→ ', el(doc, 'b', '', str(c.name)), ' ', str(c.arguments)]));
      });
      if (rs.error) out.push(el(doc, 'div', 'status-err', 'error: ' + [rs.error.type, rs.error.code, rs.error.message].filter(Boolean).join(' · ')));
      if (!out.length) out.push(el(doc, 'div', 'muted', 'no response text'));
      parts.push(section(doc, 'Response', out));
    }
    if (it.toolCalls.length || it.toolResults.length) {
      var tools = [];
      it.toolCalls.forEach(function (ev) {
        var d = data(ev);
        tools.push(el(doc, 'div', 'tool', ['tool_call ', el(doc, 'b', '', str(d.tool && d.tool.name)), ' ', str(d.call_id), ' ',
          d.arguments ? JSON.stringify(d.arguments) : '']));
      });
      it.toolResults.forEach(function (ev) {
        var d = data(ev);
        tools.push(el(doc, 'div', 'tool', ['tool_result ', el(doc, 'b', '', str(d.tool && d.tool.name)), ' ', str(d.call_id),
          d.success === false ? ' (failed)' : '', ' ', str(d.result)]));
      });
      parts.push(section(doc, 'Tools', tools));
    }
    if (it.chunks) parts.push(el(doc, 'div', 'muted', it.chunks + ' streaming chunks'));
    parts.push(section(doc, 'Events', it.events.map(function (ev) { return rawBlock(doc, ev); })));
    var td = el(doc, 'td', '', parts);
    td.colSpan = colSpan;
    return el(doc, 'tr', 'detail', [td]);
  }

  // systemDetail is the one-line description of a system event.
  function systemDetail(ev) {
    var d = data(ev);
    switch (ev.event_type) {
      case 'process.exec': return str(d.exe) + (d.args ? ' ' + d.args.join(' ') : '');
      case 'process.exit': return 'exit ' + str(d.exit_code) + (d.signal ? ' signal ' + d.signal : '');
      case 'process.fork': return 'child ' + str(d.child_pid);
      case 'network.connect': {
        var dest = d.dest || {};
        return (dest.domain || dest.ip || '') + (dest.port ? ':' + dest.port : '') + (d.success === false ? ' failed ' + str(d.error) : '');
      }
      case 'file.open': return str(d.path) + (d.flags ? ' [' + d.flags.join(',') + ']' : '');
      case 'file.write': return str(d.path) + (d.bytes_written !== undefined ? ' ' + d.bytes_written + ' bytes' : '');
    }
    return JSON.stringify(d);
  }

  function renderSystemRow(doc, rec, open) {
    var ev = rec.ev;
    var tr = el(doc, 'tr', 'row' + (open ? ' open' : ''), [
      el(doc, 'td', '', clock(ev.ts)), el(doc, 'td', '', str(ev.event_type)),
      el(doc, 'td', '', processOf(ev)), el(doc, 'td', '', systemDetail(ev))
    ]);
    return tr;
  }

  function renderSystemDetail(doc, rec, colSpan) {
    var td = el(doc, 'td', '', [rawBlock(doc, rec.ev)]);
    td.colSpan = colSpan;
    return el(doc, 'tr', 'detail', [td]);
  }

  // matches applies the filters to an interaction (or a system record).
  function matches(f, it, system) {
    var evs = system ? [it.ev] : it.events;
    if (f.type) {
      var any = false;
      for (var i = 0; i < evs.length; i++) if (evs[i].event_type === f.type) any = true;
      if (!any && !(f.type === 'ai.streaming_chunk' && it.chunks)) return false;
    }
    if (f.provider && (system || providerOf(it) !== f.provider)) return false;
    if (f.process) {
      var p = processOf(system ? it.ev : (it.req || it.resp || evs[0])).toLowerCase();
      if (p.indexOf(f.process.toLowerCase()) < 0) return false;
    }
    if (f.text && it.text.indexOf(f.text.toLowerCase()) < 0) return false;
    return true;
  }

  function counter(doc, label, value, bad) {
    return el(doc, 'span', 'counter' + (bad && value ? ' bad' : ''), [label + ' ', el(doc, 'b', '', str(value))]);
  }

  // renderCounters draws the counters of /api/stats.
  function renderCounters(doc, box, st, local) {
    while (box.firstChild) box.removeChild(box.firstChild);
    box.appendChild(counter(doc, 'events', st.events));
    var types = Object.keys(st.by_type || {}).sort();
    types.forEach(function (t) { box.appendChild(counter(doc, t, st.by_type[t])); });
    box.appendChild(counter(doc, 'tokens in', st.prompt_tokens));
    box.appendChild(counter(doc, 'out', st.completion_tokens));
    box.appendChild(counter(doc, 'total', st.total_tokens));
    box.appendChild(counter(doc, 'cost', '$' + Number(st.cost_usd || 0).toFixed(4)));
    box.appendChild(counter(doc, 'errors', st.errors, true));
    box.appendChild(counter(doc, 'streams', st.clients));
    box.appendChild(counter(doc, 'streams dropped', st.clients_dropped, true));
    box.appendChild(counter(doc, 'missed here', local.missed, true));
    box.appendChild(counter(doc, 'evicted from buffer', st.ring_evicted));
    if (st.encode_errors) box.appendChild(counter(doc, 'not encodable', st.encode_errors, true));
  }

  // start runs the page: the event stream, the counters, the filters.
  function start(win) {
    var doc = win.document;
    var $ = function (id) { return doc.getElementById(id); };
    var model = new Model();
    var open = new Set();
    var view = 'ai';
    var paused = false, pending = [], dirty = true, local = { missed: 0 };
    var filter = { type: '', provider: '', process: '', text: '' };

    function apply(seq, ev) {
      model.add(seq, ev);
      dirty = true;
    }

    function updateProviders() {
      var sel = $('f-provider');
      var have = new Set();
      for (var i = 0; i < sel.options.length; i++) have.add(sel.options[i].value);
      Array.from(model.providers).sort().forEach(function (p) {
        if (!have.has(p)) { var o = el(doc, 'option', '', p); o.value = p; sel.appendChild(o); }
      });
    }

    // rows caches each item's rendered rows while it is unchanged, so that
    // a re-render keeps the state of what the user opened inside them.
    var cache = new Map();
    function cached(key, version, isOpen, make, makeDetail) {
      var c = cache.get(key);
      if (!c || c.version !== version || c.open !== isOpen) {
        c = { version: version, open: isOpen, row: make(), detail: isOpen ? makeDetail() : null };
        c.row.addEventListener('click', function () {
          if (open.has(key)) open.delete(key); else open.add(key);
          dirty = true;
          render();
        });
        cache.set(key, c);
      }
      c.used = true;
      return c;
    }

    function render() {
      // While paused the model does not change (new events wait in
      // pending), so filters and clicks still redraw the frozen view.
      if (!dirty) return;
      dirty = false;
      updateProviders();
      var body = $(view === 'ai' ? 'ai-rows' : 'system-rows');
      var rows = [];
      cache.forEach(function (c) { c.used = false; });
      if (view === 'ai') {
        var list = Array.from(model.interactions.values());
        for (var i = list.length - 1; i >= 0 && rows.length < MAX_ROWS; i--) {
          var it = list[i];
          if (!matches(filter, it, false)) continue;
          rows.push(cached(it.key, it.version, open.has(it.key),
            renderRow.bind(null, doc, it, open.has(it.key)), renderDetail.bind(null, doc, it, 9)));
        }
      } else {
        for (var j = model.system.length - 1; j >= 0 && rows.length < MAX_ROWS; j--) {
          var rec = model.system[j];
          if (!matches(filter, rec, true)) continue;
          var k = 'sys:' + rec.seq;
          rows.push(cached(k, 0, open.has(k),
            renderSystemRow.bind(null, doc, rec, open.has(k)), renderSystemDetail.bind(null, doc, rec, 4)));
        }
      }
      cache.forEach(function (c, key) { if (!c.used) cache.delete(key); });
      while (body.firstChild) body.removeChild(body.firstChild);
      rows.forEach(function (r) {
        body.appendChild(r.row);
        if (r.detail) body.appendChild(r.detail);
      });
      $('empty').className = rows.length ? 'empty hidden' : 'empty';
    }

    function connect() {
      var es = new win.EventSource('/api/events?since=0');
      es.onopen = function () { $('conn').textContent = 'live'; $('conn').className = 'conn live'; pollStats(); };
      es.onerror = function () { $('conn').textContent = 'reconnecting…'; $('conn').className = 'conn down'; };
      es.onmessage = function (m) {
        var ev;
        try { ev = JSON.parse(m.data); } catch (e) { return; }
        var seq = Number(m.lastEventId);
        if (paused) pending.push([seq, ev]); else apply(seq, ev);
        if (paused) $('pending').textContent = pending.length + ' new while paused';
      };
      es.addEventListener('gap', function (m) {
        try { local.missed += JSON.parse(m.data).missed || 0; } catch (e) { /* ignore */ }
      });
    }

    function pollStats() {
      win.fetch('/api/stats', { cache: 'no-store' }).then(function (r) { return r.json(); }).then(function (st) {
        renderCounters(doc, $('counters'), st, local);
      }).catch(function () { /* the stream's state shows the outage */ });
    }

    function bindFilter(id, field) {
      $(id).addEventListener('input', function () { filter[field] = $(id).value; dirty = true; render(); });
    }
    bindFilter('f-type', 'type');
    bindFilter('f-provider', 'provider');
    bindFilter('f-process', 'process');
    bindFilter('f-text', 'text');
    $('pause').addEventListener('click', function () {
      paused = !paused;
      $('pause').textContent = paused ? 'Resume' : 'Pause';
      if (!paused) {
        pending.forEach(function (p) { apply(p[0], p[1]); });
        pending = [];
        $('pending').textContent = '';
        render();
      }
    });
    function showView(v) {
      view = v;
      $('tab-ai').className = 'tab' + (v === 'ai' ? ' active' : '');
      $('tab-system').className = 'tab' + (v === 'system' ? ' active' : '');
      $('ai-table').className = 'events' + (v === 'ai' ? '' : ' hidden');
      $('system-table').className = 'events' + (v === 'system' ? '' : ' hidden');
      dirty = true;
      render();
    }
    $('tab-ai').addEventListener('click', function () { showView('ai'); });
    $('tab-system').addEventListener('click', function () { showView('system'); });

    connect();
    pollStats();
    win.setInterval(render, 250);
    win.setInterval(pollStats, 2000);
  }

  root.OISPDash = {
    el: el, Model: Model, summarize: summarize, renderRow: renderRow, renderDetail: renderDetail,
    renderSystemRow: renderSystemRow, renderSystemDetail: renderSystemDetail, renderCounters: renderCounters,
    matches: matches, start: start
  };
  if (root.document && root.EventSource) {
    if (root.document.readyState === 'loading') {
      root.document.addEventListener('DOMContentLoaded', function () { start(root); });
    } else {
      start(root);
    }
  }
})(this);
