/* chattasks report script: the sample browser, the flipped questions and sortable tables.
   Written for chattasks, no library. Every text taken from the data enters the page through
   textContent, never as markup. Lists are virtual: only the rows in view exist in the DOM. */
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const ROW = 28; // px, the height of a list row (report.css .vlist .row)
  const OVERSCAN = 10;

  function h(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function addOption(select, value, text) {
    const node = h("option", null, text);
    node.value = value;
    select.appendChild(node);
  }

  /* ---------- samples: outcome, text ---------- */

  function outcomeOf(col, j) {
    const f = col.f[j];
    if (f >= 0) return "f:" + DATA.kinds[f];
    return col.s[j] > 0.5 ? "correct" : "wrong";
  }

  function badge(outcome) {
    if (outcome === "correct") return h("span", "badge correct", "✓");
    if (outcome === "wrong") return h("span", "badge wrong", "✗");
    const node = h("span", "badge failure", outcome.slice(2).replace(/_/g, " "));
    node.title = "failure: " + outcome.slice(2);
    return node;
  }

  function outcomeText(outcome) {
    if (outcome === "correct") return "correct";
    if (outcome === "wrong") return "wrong";
    return "failure: " + outcome.slice(2).replace(/_/g, " ");
  }

  function contentText(content) {
    if (typeof content === "string") return content;
    if (Array.isArray(content)) return content.map((part) => (part && part.text) || "").join("\n");
    return JSON.stringify(content);
  }

  const snippets = new Map();
  function snippet(promptId) {
    let text = snippets.get(promptId);
    if (text === undefined) {
      const prompt = DATA.prompts[promptId] || [];
      let last = "";
      for (const message of prompt) if (message.role === "user") last = contentText(message.content);
      text = last.replace(/\s+/g, " ").slice(0, 160);
      snippets.set(promptId, text);
    }
    return text;
  }

  const haystacks = new Map();
  function haystack(run, task, col, j) {
    const key = run + "\u0000" + task;
    let texts = haystacks.get(key);
    if (!texts) {
      texts = new Array(col.i.length);
      haystacks.set(key, texts);
    }
    if (texts[j] === undefined) {
      const prompt = DATA.prompts[col.p[j]] || [];
      const parts = prompt.map((message) => contentText(message.content));
      parts.push(col.r[j] || "", col.x[j] || "", col.g[j] || "", task + " #" + col.i[j]);
      texts[j] = parts.join("\n").toLowerCase();
    }
    return texts[j];
  }

  /* ---------- a virtual list: only the rows in view are in the DOM ---------- */

  function VirtualList(box, renderRow, onSelect) {
    this.box = box;
    this.renderRow = renderRow;
    this.onSelect = onSelect;
    this.count = 0;
    this.selected = -1;
    this.spacer = h("div", "spacer");
    box.appendChild(this.spacer);
    let pending = false;
    box.addEventListener("scroll", () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        this.render();
      });
    });
    box.addEventListener("click", (event) => {
      const row = event.target.closest(".row");
      if (!row) return;
      box.focus({ preventScroll: true });
      this.select(Number(row.dataset.pos), false);
    });
    box.addEventListener("keydown", (event) => {
      if (this.key(event.key)) event.preventDefault();
    });
  }

  VirtualList.prototype.reset = function (count, empty) {
    this.count = count;
    this.selected = -1;
    this.emptyText = empty;
    this.spacer.style.height = count * ROW + "px";
    this.box.scrollTop = 0;
    this.render();
    if (count > 0) this.select(0, false);
    else this.onSelect(-1);
  };

  VirtualList.prototype.render = function () {
    const box = this.box;
    const first = Math.max(0, Math.floor(box.scrollTop / ROW) - OVERSCAN);
    const last = Math.min(this.count, Math.ceil((box.scrollTop + box.clientHeight) / ROW) + OVERSCAN);
    const fragment = document.createDocumentFragment();
    if (this.count === 0) fragment.appendChild(h("div", "empty", this.emptyText || "Nothing to show."));
    for (let pos = first; pos < last; pos++) {
      const row = this.renderRow(pos);
      row.classList.add("row");
      if (pos === this.selected) {
        row.classList.add("selected");
        row.setAttribute("aria-selected", "true");
      }
      row.setAttribute("role", "option");
      row.dataset.pos = String(pos);
      row.style.top = pos * ROW + "px";
      fragment.appendChild(row);
    }
    this.spacer.replaceChildren(fragment);
  };

  VirtualList.prototype.select = function (pos, scroll) {
    if (this.count === 0) return;
    pos = Math.max(0, Math.min(this.count - 1, pos));
    this.selected = pos;
    if (scroll !== false) {
      const box = this.box;
      if (pos * ROW < box.scrollTop) box.scrollTop = pos * ROW;
      else if ((pos + 1) * ROW > box.scrollTop + box.clientHeight) box.scrollTop = (pos + 1) * ROW - box.clientHeight;
    }
    this.render();
    this.onSelect(pos);
  };

  VirtualList.prototype.key = function (key) {
    const page = Math.max(1, Math.floor(this.box.clientHeight / ROW) - 1);
    const moves = {
      ArrowDown: 1, j: 1, ArrowUp: -1, k: -1, PageDown: page, PageUp: -page,
      Home: -Infinity, End: Infinity,
    };
    if (!(key in moves) || this.count === 0) return false;
    const move = moves[key];
    const target = move === -Infinity ? 0 : move === Infinity ? this.count - 1 : this.selected + move;
    this.select(target, true);
    return true;
  };

  /* ---------- showing one sample ---------- */

  function showContent(parent, content) {
    if (Array.isArray(content)) {
      for (const part of content) {
        const type = (part && part.type) || "text";
        const box = h("div", "part " + type);
        const label = { python: "tool call (python)", python_output: "tool output", text: "text" }[type] || type;
        box.appendChild(h("div", "kind", label));
        box.appendChild(h("pre", null, (part && part.text) || ""));
        parent.appendChild(box);
      }
    } else {
      parent.appendChild(h("pre", null, contentText(content)));
    }
  }

  function showConversation(parent, prompt) {
    parent.appendChild(h("h4", null, "Conversation"));
    for (const message of prompt) {
      const turn = h("div", "turn " + (message.role || ""));
      turn.appendChild(h("div", "role", message.role || "?"));
      showContent(turn, message.content);
      parent.appendChild(turn);
    }
  }

  function showAnswer(parent, col, j) {
    const outcome = outcomeOf(col, j);
    parent.appendChild(h("h4", null, "Response"));
    const turn = h("div", "turn response");
    turn.appendChild(h("div", "role", "model"));
    turn.appendChild(h("pre", "response-text", col.r[j]));
    parent.appendChild(turn);
    const answer = h("div", "answer");
    const got = h("span", "extracted");
    got.append("answer ", h("b", null, col.x[j] === null ? "—" : col.x[j]));
    const want = h("span", "reference");
    want.append("reference ", h("b", null, col.g[j] === null ? "—" : col.g[j]));
    const verdict = h("span", "verdict");
    verdict.append(badge(outcome), outcomeText(outcome) + " (score " + col.s[j] + ")");
    answer.append(got, want, verdict);
    parent.appendChild(answer);
  }

  function showDetails(parent, col, j) {
    const details = col.d[j];
    if (!details) return;
    const rest = Object.assign({}, details);
    if (details.scores && typeof details.scores === "object") {
      parent.appendChild(h("h4", null, "Letter scores"));
      const table = h("table", "scores");
      const entries = Object.entries(details.scores).sort((a, b) => (b[1] ?? -Infinity) - (a[1] ?? -Infinity));
      for (const [letter, score] of entries) {
        const tr = h("tr", letter === col.x[j] ? "chosen" : "");
        tr.append(h("td", null, letter), h("td", null, score === null ? "—" : score));
        table.appendChild(tr);
      }
      parent.appendChild(table);
      delete rest.scores;
    }
    if ("status" in details) {
      parent.appendChild(h("h4", null, "Sandbox"));
      const status = h("div", "sandbox " + details.status);
      status.append("status: ", h("b", "sandbox-status", details.status));
      parent.appendChild(status);
      if (details.error) parent.appendChild(h("pre", "sandbox-error", details.error));
      for (const stream of ["stdout", "stderr"]) {
        if (details[stream]) {
          parent.appendChild(h("div", "meta", stream));
          parent.appendChild(h("pre", "sandbox-" + stream, details[stream]));
        }
        delete rest[stream];
      }
      delete rest.status;
      delete rest.error;
    }
    if (Object.keys(rest).length) {
      parent.appendChild(h("h4", null, "Details"));
      parent.appendChild(h("pre", null, JSON.stringify(rest, null, 2)));
    }
  }

  function showSample(parent, run, task, col, j) {
    parent.replaceChildren();
    const title = h("h3");
    title.append(badge(outcomeOf(col, j)), task + " · question " + col.i[j] + (col.k[j] ? " · sample " + col.k[j] : ""));
    parent.appendChild(title);
    const meta = [DATA.runs[run].label, "method " + DATA.methods[col.m[j]], col.t[j] + " s of model time"];
    parent.appendChild(h("div", "meta", meta.join(" · ")));
    showConversation(parent, DATA.prompts[col.p[j]] || []);
    showAnswer(parent, col, j);
    showDetails(parent, col, j);
    parent.dataset.task = task;
    parent.dataset.index = String(col.i[j]);
    parent.dataset.sample = String(col.k[j]);
  }

  function rowFor(task, col, j, outcome) {
    const row = h("div");
    row.append(badge(outcome), h("span", "where", task + " #" + col.i[j] + (col.k[j] ? "·" + col.k[j] : "")));
    row.append(snippet(col.p[j]));
    row.dataset.task = task;
    row.dataset.index = String(col.i[j]);
    row.dataset.sample = String(col.k[j]);
    return row;
  }

  /* ---------- the sample browser ---------- */

  function SampleBrowser() {
    this.runSelect = document.getElementById("sample-run");
    this.taskSelect = document.getElementById("sample-task");
    this.outcomeSelect = document.getElementById("sample-outcome");
    this.search = document.getElementById("sample-search");
    this.count = document.getElementById("sample-count");
    this.detail = document.getElementById("sample-detail");
    this.run = 0;
    this.items = [];
    this.list = new VirtualList(
      document.getElementById("sample-list"),
      (pos) => {
        const [task, j] = this.items[pos];
        const col = DATA.samples[this.run][task];
        return rowFor(task, col, j, outcomeOf(col, j));
      },
      (pos) => this.show(pos)
    );
    if (this.runSelect) {
      DATA.runs.forEach((run, number) => addOption(this.runSelect, String(number), run.label));
      this.runSelect.addEventListener("change", () => {
        this.run = Number(this.runSelect.value);
        this.fillOptions();
        this.filter();
      });
    }
    this.fillOptions();
    let timer = null;
    this.search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.filter(), 120);
    });
    this.search.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        clearTimeout(timer);
        this.filter();
      }
    });
    this.taskSelect.addEventListener("change", () => this.filter());
    this.outcomeSelect.addEventListener("change", () => this.filter());
    this.filter();
  }

  SampleBrowser.prototype.fillOptions = function () {
    const samples = DATA.samples[this.run];
    const task = this.taskSelect.value;
    this.taskSelect.replaceChildren();
    addOption(this.taskSelect, "", "all tasks");
    const kinds = new Set();
    for (const name of DATA.runs[this.run].tasks) {
      const col = samples[name];
      addOption(this.taskSelect, name, name + " (" + col.i.length + ")");
      for (const f of col.f) if (f >= 0) kinds.add(f);
    }
    if (task && samples[task]) this.taskSelect.value = task;
    const outcome = this.outcomeSelect.value;
    this.outcomeSelect.replaceChildren();
    addOption(this.outcomeSelect, "all", "all samples");
    addOption(this.outcomeSelect, "correct", "correct");
    addOption(this.outcomeSelect, "wrong", "wrong (an answer, not the reference)");
    addOption(this.outcomeSelect, "failed", "any failure");
    for (const f of [...kinds].sort()) addOption(this.outcomeSelect, "f:" + DATA.kinds[f], "failure: " + DATA.kinds[f].replace(/_/g, " "));
    this.outcomeSelect.value = [...this.outcomeSelect.options].some((o) => o.value === outcome) ? outcome : "all";
  };

  SampleBrowser.prototype.filter = function () {
    const samples = DATA.samples[this.run];
    const tasks = this.taskSelect.value ? [this.taskSelect.value] : DATA.runs[this.run].tasks;
    const want = this.outcomeSelect.value;
    const query = this.search.value.trim().toLowerCase();
    const items = [];
    let total = 0;
    for (const task of DATA.runs[this.run].tasks) total += samples[task].i.length;
    for (const task of tasks) {
      const col = samples[task];
      for (let j = 0; j < col.i.length; j++) {
        if (want !== "all") {
          const outcome = outcomeOf(col, j);
          if (want === "failed" ? !outcome.startsWith("f:") : outcome !== want) continue;
        }
        if (query && !haystack(this.run, task, col, j).includes(query)) continue;
        items.push([task, j]);
      }
    }
    this.items = items;
    this.count.textContent = items.length.toLocaleString("en") + " of " + total.toLocaleString("en") + " samples";
    this.count.dataset.count = String(items.length);
    this.count.dataset.total = String(total);
    this.list.reset(items.length, "No sample matches.");
  };

  SampleBrowser.prototype.show = function (pos) {
    if (pos < 0) {
      this.detail.replaceChildren(h("p", "note", "No sample matches."));
      delete this.detail.dataset.index;
      return;
    }
    const [task, j] = this.items[pos];
    showSample(this.detail, this.run, task, DATA.samples[this.run][task], j);
  };

  /* ---------- flipped questions between two runs ---------- */

  function rowsByIndex(run, task) {
    const cache = rowsByIndex.cache || (rowsByIndex.cache = new Map());
    const key = run + "\u0000" + task;
    let map = cache.get(key);
    if (!map) {
      map = new Map();
      const col = DATA.samples[run][task];
      for (let j = 0; j < col.i.length; j++) {
        if (!map.has(col.i[j])) map.set(col.i[j], []);
        map.get(col.i[j]).push(j);
      }
      cache.set(key, map);
    }
    return map;
  }

  function FlipView() {
    this.pairSelect = document.getElementById("flip-pair");
    this.taskSelect = document.getElementById("flip-task");
    this.kindSelect = document.getElementById("flip-kind");
    this.count = document.getElementById("flip-count");
    this.detail = document.getElementById("flip-detail");
    this.items = [];
    this.pairKeys = [];
    for (const pair of DATA.pairs) {
      const key = pair.a + ":" + pair.b;
      if (!this.pairKeys.includes(key)) {
        this.pairKeys.push(key);
        addOption(this.pairSelect, key, DATA.runs[pair.a].label + " → " + DATA.runs[pair.b].label);
      }
    }
    this.list = new VirtualList(
      document.getElementById("flip-list"),
      (pos) => {
        const item = this.items[pos];
        const row = h("div");
        const mark = h("span", "badge " + (item.gained ? "correct" : "wrong"), item.gained ? "✗→✓" : "✓→✗");
        mark.title = item.gained ? "gained" : "lost";
        const rows = rowsByIndex(this.pair.a, this.pair.task).get(item.index) || [];
        const col = DATA.samples[this.pair.a][this.pair.task];
        row.append(mark, h("span", "where", this.pair.task + " #" + item.index), rows.length ? snippet(col.p[rows[0]]) : "");
        row.dataset.index = String(item.index);
        row.dataset.flip = item.gained ? "gained" : "lost";
        return row;
      },
      (pos) => this.show(pos)
    );
    this.pairSelect.addEventListener("change", () => this.fillTasks());
    this.taskSelect.addEventListener("change", () => this.filter());
    this.kindSelect.addEventListener("change", () => this.filter());
    this.fillTasks();
  }

  FlipView.prototype.fillTasks = function () {
    const [a, b] = this.pairSelect.value.split(":").map(Number);
    this.taskSelect.replaceChildren();
    this.pairs = DATA.pairs.filter((pair) => pair.a === a && pair.b === b);
    this.pairs.forEach((pair, number) => {
      addOption(this.taskSelect, String(number), pair.task + " (" + (pair.gained.length + pair.lost.length) + " flipped)");
    });
    const first = this.pairs.findIndex((pair) => pair.gained.length + pair.lost.length > 0);
    this.taskSelect.value = String(Math.max(0, first));
    this.filter();
  };

  FlipView.prototype.filter = function () {
    this.pair = this.pairs[Number(this.taskSelect.value)];
    const kind = this.kindSelect.value;
    const items = [];
    if (kind !== "lost") for (const index of this.pair.gained) items.push({ index: index, gained: true });
    if (kind !== "gained") for (const index of this.pair.lost) items.push({ index: index, gained: false });
    items.sort((x, y) => x.index - y.index);
    this.items = items;
    this.count.textContent = items.length + " flipped of " + this.pair.task;
    this.count.dataset.count = String(items.length);
    this.list.reset(items.length, "No question flipped.");
  };

  FlipView.prototype.side = function (run, item) {
    const box = h("div", "side");
    const title = h("h4", null, DATA.runs[run].label);
    box.appendChild(title);
    const col = DATA.samples[run][this.pair.task];
    for (const j of rowsByIndex(run, this.pair.task).get(item.index) || []) {
      if (col.k[j]) box.appendChild(h("div", "meta", "sample " + col.k[j]));
      showAnswer(box, col, j);
    }
    return box;
  };

  FlipView.prototype.show = function (pos) {
    if (pos < 0) {
      this.detail.replaceChildren(h("p", "note", "No question flipped."));
      return;
    }
    const item = this.items[pos];
    const { a, b, task } = this.pair;
    const col = DATA.samples[a][task];
    const rows = rowsByIndex(a, task).get(item.index) || [];
    this.detail.replaceChildren(h("h3", null, task + " · question " + item.index + (item.gained ? " · gained" : " · lost")));
    showConversation(this.detail, rows.length ? DATA.prompts[col.p[rows[0]]] || [] : []);
    const sides = h("div", "sides");
    sides.append(this.side(a, item), this.side(b, item));
    this.detail.appendChild(sides);
    this.detail.dataset.index = String(item.index);
  };

  /* ---------- sortable tables ---------- */

  function sortable(table) {
    const heads = table.tHead ? [...table.tHead.rows[0].cells] : [];
    heads.forEach((th, column) => {
      th.tabIndex = 0;
      const sort = () => {
        const ascending = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach((other) => other.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const body = table.tBodies[0];
        const rows = [...body.rows];
        const value = (row) => {
          const cell = row.cells[column];
          const raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent;
          const number = Number(raw);
          return raw !== "" && !Number.isNaN(number) ? number : raw.toLowerCase();
        };
        rows.sort((x, y) => {
          const p = value(x), q = value(y);
          const order = typeof p === typeof q ? (p < q ? -1 : p > q ? 1 : 0) : typeof p === "number" ? -1 : 1;
          return ascending ? order : -order;
        });
        body.append(...rows);
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          sort();
        }
      });
    });
  }

  /* ---------- start ---------- */

  document.querySelectorAll("table.sortable").forEach(sortable);
  const browser = new SampleBrowser();
  if (DATA.pairs.length && document.getElementById("flip-pair")) new FlipView();
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    const typing = target instanceof HTMLInputElement || target instanceof HTMLSelectElement;
    if (event.key === "/" && !typing) {
      event.preventDefault();
      browser.search.focus();
      browser.search.select();
    } else if (event.key === "Escape" && typing) {
      target.blur();
    }
  });
  performance.mark("chattasks-ready"); // bench/bench_view.py reads it
  document.body.dataset.ready = "1";
})();
