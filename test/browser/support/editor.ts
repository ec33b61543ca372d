/**
 * The Node-RED editor (4.1) driven the way a user drives it: drag from the
 * palette, double-click to edit, the config node's "+" button, Deploy, the
 * inject button, the help tab, the user settings. The editor's `RED` object
 * is only *read* (ids of new nodes, status), never used to change anything.
 *
 * DOM facts used here (Node-RED 4.1 editor-client, red.js):
 *   palette entry        .red-ui-palette-node[data-palette-type=T] in #red-ui-palette-container-<category>
 *   workspace            #red-ui-workspace-chart (a jQuery UI droppable for palette entries)
 *   node on the canvas   svg g.red-ui-flow-node-group with id = node id; its body rect.red-ui-flow-node
 *   ports                g.red-ui-flow-port-output / -input > rect.red-ui-flow-port
 *   status               g.red-ui-flow-node-status-group: rect.red-ui-flow-node-status
 *                        (class red-ui-flow-node-status-<shape>-<fill>) + text.red-ui-flow-node-status-label
 *   inject button        g.red-ui-flow-node-button rect.red-ui-flow-node-button-button
 *   edit tray            .red-ui-tray; node dialog: #node-dialog-ok / #node-dialog-cancel;
 *                        config dialog: #node-config-dialog-ok / #node-config-dialog-cancel
 *   config select        #node-input-<prop> with #node-input-btn-<prop>-add / -edit
 *   deploy               #red-ui-header-button-deploy (gets .disabled when nothing is left to deploy)
 *   help                 sidebar tab #red-ui-tab-help-link-button; h1.red-ui-help-title + .red-ui-help
 *   user settings        main menu #red-ui-header-button-sidemenu → #menu-item-user-settings;
 *                        language select #user-settings-editor-language (kept in localStorage
 *                        "editor-language", read when the editor loads); Close = #node-dialog-ok
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';

export interface Point {
  x: number;
  y: number;
}

export interface NodeStatusView {
  /** e.g. "dot-green", "ring-grey"; "" when the node shows no shape. */
  shape: string;
  text: string;
}

const byId = (id: string) => `[id="${id.replace(/"/g, '\\"')}"]`;

export class Editor {
  /** Uncaught page errors and console errors, for "the dialog opened cleanly" checks. */
  readonly errors: string[] = [];

  private constructor(
    readonly context: BrowserContext,
    readonly page: Page,
    readonly url: string,
    readonly screenshotDir: string,
  ) {
    page.on('pageerror', (e) => this.errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') this.errors.push(`console: ${m.text()}`);
    });
  }

  /** A new browser context (own localStorage) with the editor loaded. */
  static async open(browser: Browser, url: string, screenshotDir: string, opts: { language?: string } = {}): Promise<Editor> {
    const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, locale: 'en-US' });
    if (opts.language) {
      // What the user settings' language select stores; read when the editor starts.
      // Only the first time: a language chosen later in the user settings survives reloads.
      await context.addInitScript((lang: string) => {
        if (!sessionStorage.getItem('intune-test-language')) {
          sessionStorage.setItem('intune-test-language', lang);
          localStorage.setItem('editor-language', lang);
        }
      }, opts.language);
    }
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    const ed = new Editor(context, page, url, screenshotDir);
    await page.goto(url);
    await ed.waitUntilLoaded();
    return ed;
  }

  async waitUntilLoaded(): Promise<void> {
    await this.page.waitForFunction(
      () => {
        const w = window as unknown as { RED?: { nodes?: { getType(t: string): unknown }; workspaces?: { active(): string } } };
        const bar = document.getElementById('red-ui-loading-progress');
        return !!w.RED?.nodes?.getType('intune-config') && !!w.RED.workspaces?.active() && (!bar || bar.style.display === 'none');
      },
      undefined,
      { timeout: 60_000 },
    );
    await this.page.locator('.red-ui-header-toolbar').waitFor({ state: 'visible' });
  }

  async close(): Promise<void> {
    await this.context.close();
  }

  // ------------------------------------------------------------------ artefacts

  async screenshot(name: string, target?: Locator): Promise<string> {
    fs.mkdirSync(this.screenshotDir, { recursive: true });
    const file = path.join(this.screenshotDir, `${name.replace(/[^a-zA-Z0-9._-]+/g, '_')}.png`);
    if (target) await target.screenshot({ path: file, animations: 'disabled' });
    else await this.page.screenshot({ path: file, animations: 'disabled' });
    return file;
  }

  /** The whole open edit tray (the topmost one when a config dialog is stacked on a node dialog), every section visible. */
  async screenshotTray(name: string): Promise<string> {
    // Make the window tall enough for the whole dialog, so the picture shows every field.
    const size = this.page.viewportSize() ?? { width: 1600, height: 1000 };
    const hidden = await this.topTray().evaluate((tray) => {
      let extra = 0;
      tray.querySelectorAll('*').forEach((el) => {
        const o = getComputedStyle(el).overflowY;
        if (o === 'auto' || o === 'scroll') extra = Math.max(extra, el.scrollHeight - el.clientHeight);
      });
      return extra;
    });
    const grow = Math.min(Math.max(0, hidden) + 40, 6000);
    if (grow > 40) {
      await this.page.setViewportSize({ width: size.width, height: size.height + grow });
      await this.page.waitForTimeout(300); // the tray re-lays out on resize
    }
    try {
      return await this.screenshot(name, this.topTray());
    } finally {
      if (grow > 40) {
        await this.page.setViewportSize(size);
        await this.page.waitForTimeout(200);
      }
    }
  }

  // ------------------------------------------------------------------ reading editor state

  /** Ids of the nodes of a type on the canvas and in the config list. */
  async idsOfType(type: string): Promise<string[]> {
    return this.page.evaluate((t) => {
      const ids: string[] = [];
      (window as any).RED.nodes.eachNode((n: any) => { if (n.type === t) ids.push(n.id); });
      (window as any).RED.nodes.eachConfig((n: any) => { if (n.type === t) ids.push(n.id); });
      return ids;
    }, type);
  }

  /** A property of a node as the editor holds it (after the dialog's "Done"). */
  async nodeProps(id: string): Promise<Record<string, unknown>> {
    return this.page.evaluate((nid) => {
      const n = (window as any).RED.nodes.node(nid);
      if (!n) return {};
      const out: Record<string, unknown> = { type: n.type, outputs: n.outputs, valid: n.valid, changed: n.changed };
      for (const k of Object.keys(n._def.defaults || {})) out[k] = n[k];
      return out;
    }, id);
  }

  async language(): Promise<string> {
    return this.page.evaluate(() => (window as any).RED.i18n.lang());
  }

  // ------------------------------------------------------------------ palette and canvas

  paletteEntry(type: string): Locator {
    return this.page.locator(`.red-ui-palette-node[data-palette-type="${type}"]`);
  }

  /** Expands the palette category a type is in (a click on its header, as a user does). */
  async showInPalette(type: string): Promise<Locator> {
    const entry = this.paletteEntry(type);
    await entry.waitFor({ state: 'attached' });
    if (!(await entry.isVisible())) {
      const category = await entry.evaluate((el) => el.closest('.red-ui-palette-category')?.id.replace(/^red-ui-palette-(container|base-category)-/, '') ?? '');
      await this.page.locator(`[id="red-ui-palette-header-${category}"]`).click();
      await entry.waitFor({ state: 'visible' });
    }
    await entry.scrollIntoViewIfNeeded();
    return entry;
  }

  /** Page coordinates of a point of the workspace given in canvas coordinates (from its top-left, zoom 1). */
  async canvasPoint(p: Point): Promise<Point> {
    const box = await this.page.locator('#red-ui-workspace-chart').boundingBox();
    if (!box) throw new Error('workspace not visible');
    const scroll = await this.page.locator('#red-ui-workspace-chart').evaluate((el) => ({ x: el.scrollLeft, y: el.scrollTop }));
    return { x: box.x + p.x - scroll.x, y: box.y + p.y - scroll.y };
  }

  /** Drags a type from the palette onto the workspace; returns the new node's id. */
  async addFromPalette(type: string, at: Point): Promise<string> {
    const before = new Set(await this.idsOfType(type));
    const entry = await this.showInPalette(type);
    const from = await entry.boundingBox();
    if (!from) throw new Error(`palette entry of ${type} not visible`);
    const to = await this.canvasPoint(at);
    const m = this.page.mouse;
    await m.move(from.x + from.width / 2, from.y + from.height / 2);
    await m.down();
    await m.move(from.x + from.width / 2 + 10, from.y + from.height / 2 + 5, { steps: 3 });
    await m.move(to.x, to.y, { steps: 12 });
    await m.up();
    const found = await this.page.waitForFunction(
      ({ t, known }) => {
        const ids: string[] = [];
        (window as any).RED.nodes.eachNode((n: any) => { if (n.type === t && !known.includes(n.id)) ids.push(n.id); });
        return ids.length === 1 ? ids[0] : null;
      },
      { t: type, known: [...before] },
      { timeout: 10_000 },
    ).catch(() => null);
    if (!found) throw new Error(`dragging ${type} from the palette onto the workspace did not add a node`);
    const id = (await found.jsonValue()) as string;
    await this.page.locator(byId(id)).waitFor({ state: 'visible' });
    // Clear the selection so that a later click selects exactly what it aims at.
    await this.clickEmptyCanvas();
    return id;
  }

  node(id: string): Locator {
    return this.page.locator(`#red-ui-workspace-chart g.red-ui-flow-node-group${byId(id)}`);
  }

  async clickEmptyCanvas(): Promise<void> {
    const p = await this.canvasPoint({ x: 900, y: 700 });
    await this.page.mouse.click(p.x, p.y);
  }

  async selectNode(id: string): Promise<void> {
    await this.node(id).locator('rect.red-ui-flow-node').first().click();
  }

  /** Drags a wire from an output port of one node to the input of another. */
  async wire(fromId: string, toId: string, port = 0): Promise<void> {
    const out = this.node(fromId).locator('g.red-ui-flow-port-output rect.red-ui-flow-port').nth(port);
    const inp = this.node(toId).locator('g.red-ui-flow-port-input rect.red-ui-flow-port').first();
    const a = await out.boundingBox();
    const b = await inp.boundingBox();
    if (!a || !b) throw new Error(`ports of ${fromId} → ${toId} not visible`);
    const m = this.page.mouse;
    await m.move(a.x + a.width / 2, a.y + a.height / 2);
    await m.down();
    await m.move(b.x + b.width / 2, b.y + b.height / 2, { steps: 10 });
    await m.up();
    const linked = await this.page.evaluate(
      ({ f, t, p }) => {
        let ok = false;
        (window as any).RED.nodes.eachLink((l: any) => { if (l.source.id === f && l.target.id === t && l.sourcePort === p) ok = true; });
        return ok;
      },
      { f: fromId, t: toId, p: port },
    );
    if (!linked) throw new Error(`dragging a wire from ${fromId}[${port}] to ${toId} did not connect them`);
  }

  /** Presses the button on the left of an inject node. */
  async pressInject(id: string): Promise<void> {
    await this.node(id).locator('.red-ui-flow-node-button rect.red-ui-flow-node-button-button').click();
  }

  async status(id: string): Promise<NodeStatusView> {
    return this.node(id).evaluate((g) => {
      const group = g.querySelector('.red-ui-flow-node-status-group') as SVGGElement | null;
      if (!group || group.style.display === 'none') return { shape: '', text: '' };
      const shape = group.querySelector('.red-ui-flow-node-status') as SVGElement | null;
      const cls = (shape?.getAttribute('class') ?? '').split(/\s+/).find((c) => c.startsWith('red-ui-flow-node-status-')) ?? '';
      const visible = shape && (shape as unknown as HTMLElement).style.display !== 'none';
      return {
        shape: visible ? cls.replace('red-ui-flow-node-status-', '') : '',
        text: group.querySelector('.red-ui-flow-node-status-label')?.textContent ?? '',
      };
    });
  }

  /**
   * Starts recording every status the node shows (shape and text), so that
   * short-lived ones (a run's progress) are not missed; read with statusHistory().
   */
  async recordStatus(id: string): Promise<void> {
    await this.node(id).evaluate((g) => {
      const seen: Array<{ shape: string; text: string }> = [];
      const w = window as unknown as { __statusSeen?: Record<string, unknown> };
      (w.__statusSeen ??= {})[g.id] = seen;
      const read = () => {
        const group = g.querySelector('.red-ui-flow-node-status-group') as SVGGElement | null;
        if (!group || group.style.display === 'none') return;
        const shape = group.querySelector('.red-ui-flow-node-status') as SVGElement | null;
        const cls = (shape?.getAttribute('class') ?? '').split(/\s+/).find((c) => c.startsWith('red-ui-flow-node-status-')) ?? '';
        const entry = { shape: cls.replace('red-ui-flow-node-status-', ''), text: group.querySelector('.red-ui-flow-node-status-label')?.textContent ?? '' };
        const last = seen[seen.length - 1];
        if (!last || last.shape !== entry.shape || last.text !== entry.text) seen.push(entry);
      };
      read();
      new MutationObserver(read).observe(g, { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['class', 'style'] });
    });
  }

  async statusHistory(id: string): Promise<NodeStatusView[]> {
    return this.page.evaluate((nid) => ((window as any).__statusSeen?.[nid] ?? []) as NodeStatusView[], id);
  }

  /** Waits until the node's status matches; returns it. */
  async waitForStatus(id: string, want: { shape?: string | RegExp; text?: RegExp }, timeoutMs = 30_000): Promise<NodeStatusView> {
    const until = Date.now() + timeoutMs;
    let last: NodeStatusView = { shape: '', text: '' };
    const seen: string[] = [];
    while (Date.now() < until) {
      last = await this.status(id);
      const key = `${last.shape} "${last.text}"`;
      if (seen[seen.length - 1] !== key) seen.push(key);
      const shapeOk = want.shape === undefined || (typeof want.shape === 'string' ? last.shape === want.shape : want.shape.test(last.shape));
      const textOk = want.text === undefined || want.text.test(last.text);
      if (shapeOk && textOk) return last;
      await this.page.waitForTimeout(100);
    }
    throw new Error(`status of ${id} never matched ${JSON.stringify({ shape: String(want.shape), text: String(want.text) })}; seen: ${seen.join(' → ')}`);
  }

  // ------------------------------------------------------------------ edit dialogs

  topTray(): Locator {
    return this.page.locator('.red-ui-tray').last();
  }

  /** Double-clicks a node on the canvas and waits for its edit dialog. */
  async openNode(id: string): Promise<Locator> {
    // Right after a dialog closed, the editor may still be finishing its tray and
    // drop a double click (seen on a loaded machine): try again, a few times.
    const ok = this.page.locator('#node-dialog-ok');
    for (let attempt = 1; ; attempt++) {
      await this.node(id).locator('rect.red-ui-flow-node').first().dblclick();
      try {
        await ok.waitFor({ state: 'visible', timeout: attempt < 3 ? 5000 : 20_000 });
        break;
      } catch (err) {
        if (attempt >= 3) throw err;
      }
    }
    await this.settleTray();
    return this.topTray();
  }

  /** Opens the config dialog of a config property through its "+" (add) button. */
  async addConfigFrom(prop: string): Promise<Locator> {
    await this.page.locator(`#node-input-btn-${prop}-add`).click();
    await this.page.locator('#node-config-dialog-ok').waitFor({ state: 'visible' });
    await this.settleTray();
    return this.topTray();
  }

  /** Opens the selected config node's dialog through the pencil (edit) button. */
  async editConfigFrom(prop: string): Promise<Locator> {
    await this.page.locator(`#node-input-btn-${prop}-edit`).click();
    await this.page.locator('#node-config-dialog-ok').waitFor({ state: 'visible' });
    await this.settleTray();
    return this.topTray();
  }

  private async settleTray(): Promise<void> {
    // The tray slides in; wait until it stops moving.
    let prev = '';
    for (let i = 0; i < 30; i++) {
      if ((await this.page.locator('.red-ui-tray').count()) === 0) return;
      const box = JSON.stringify(await this.topTray().boundingBox({ timeout: 2000 }).catch(() => null));
      if (box === prev) return;
      prev = box;
      await this.page.waitForTimeout(100);
    }
  }

  async configDone(): Promise<void> {
    await this.page.locator('#node-config-dialog-ok').click();
    await this.page.locator('#node-config-dialog-ok').waitFor({ state: 'detached' });
    await this.settleTray();
  }

  async dialogDone(): Promise<void> {
    await this.page.locator('#node-dialog-ok').click();
    await this.page.locator('#node-dialog-ok').waitFor({ state: 'detached' });
  }

  /** Cancels every open edit dialog (config dialogs first). */
  async closeAllDialogs(): Promise<void> {
    for (let i = 0; i < 5; i++) {
      const cfg = this.page.locator('#node-config-dialog-cancel');
      const node = this.page.locator('#node-dialog-cancel');
      if (await cfg.isVisible()) {
        await cfg.click();
        await cfg.waitFor({ state: 'detached' }).catch(() => undefined);
      } else if (await node.isVisible()) {
        await node.click();
        await node.waitFor({ state: 'detached' }).catch(() => undefined);
      } else return;
      await this.settleTray();
    }
  }

  async dialogCancel(): Promise<void> {
    await this.page.locator('#node-dialog-cancel').click();
    await this.page.locator('#node-dialog-cancel').waitFor({ state: 'detached' });
  }

  /** Texts of the dialog that still look like untranslated catalog keys ("intune-x.label.y"). */
  async untranslated(scope: Locator, prefix: string): Promise<string[]> {
    return scope.evaluate((root, p) => {
      const bad: string[] = [];
      const re = new RegExp(`(^|\\s)${p.replace(/[-.]/g, (c) => `\\${c}`)}\\.[A-Za-z0-9_.]+`);
      root.querySelectorAll('*').forEach((el) => {
        for (const n of Array.from(el.childNodes)) {
          if (n.nodeType === 3 && re.test(n.textContent ?? '')) bad.push((n.textContent ?? '').trim());
        }
        for (const a of ['placeholder', 'title', 'aria-label']) {
          const v = el.getAttribute(a);
          if (v && re.test(v)) bad.push(`${a}=${v}`);
        }
      });
      return bad;
    }, prefix);
  }

  /**
   * Every element of the dialog that Node-RED translated from a data-i18n
   * attribute, with what it shows: [{ key, target, shown }], where target is
   * "text", "html" or an attribute name. Keys lose their namespace prefix.
   */
  async i18nTexts(scope: Locator): Promise<Array<{ key: string; target: string; shown: string; visible: boolean }>> {
    return scope.evaluate((root) => {
      const out: Array<{ key: string; target: string; shown: string; visible: boolean }> = [];
      root.querySelectorAll('[data-i18n]').forEach((el) => {
        const visible = !!(el as HTMLElement).offsetParent || el.tagName === 'OPTION';
        for (const spec of (el.getAttribute('data-i18n') ?? '').split(';')) {
          const m = /^(?:\[([a-z-]+)\])?(.+)$/.exec(spec.trim());
          if (!m) continue;
          const target = m[1] ?? 'text';
          const key = m[2].replace(/^[^:]*:/, '');
          const shown = target === 'text' || target === 'html' || target === 'prepend' || target === 'append'
            ? (el.textContent ?? '')
            : (el.getAttribute(target) ?? '');
          out.push({ key, target, shown: shown.replace(/\s+/g, ' ').trim(), visible });
        }
      });
      return out;
    });
  }

  /**
   * Checkboxes that do not sit beside their own label text: wider than a
   * checkbox, or on another line than the label, or far away from it.
   */
  async checkboxLayoutProblems(scope: Locator): Promise<string[]> {
    return scope.evaluate((root) => {
      const problems: string[] = [];
      root.querySelectorAll('input[type=checkbox]').forEach((cb) => {
        const box = (cb as HTMLElement).getBoundingClientRect();
        if (!(cb as HTMLElement).offsetParent || box.width === 0) return; // hidden
        const id = cb.id || '(no id)';
        if (box.width > 30) problems.push(`${id}: checkbox is ${Math.round(box.width)}px wide`);
        const label = (cb.closest('label') ?? (cb.id ? root.querySelector(`label[for="${cb.id}"]`) : null)) as HTMLElement | null;
        if (!label) return;
        // The label's text: a range over its text nodes (the label may also wrap the checkbox).
        const range = document.createRange();
        const texts: Text[] = [];
        const walk = document.createTreeWalker(label, NodeFilter.SHOW_TEXT);
        for (let n = walk.nextNode(); n; n = walk.nextNode()) if ((n.textContent ?? '').trim()) texts.push(n as Text);
        if (!texts.length) return;
        range.setStart(texts[0], 0);
        range.setEnd(texts[texts.length - 1], texts[texts.length - 1].length);
        const rects = Array.from(range.getClientRects()).filter((r) => r.width > 0);
        if (!rects.length) return;
        const first = rects[0];
        const cy = box.y + box.height / 2;
        if (cy < first.top - 4 || cy > first.bottom + 4) problems.push(`${id}: checkbox is not on the line of its label "${label.textContent!.trim()}"`);
        const gap = first.left >= box.right ? first.left - box.right : box.left - rects[rects.length - 1].right;
        if (gap > 40) problems.push(`${id}: ${Math.round(gap)}px between the checkbox and its label "${label.textContent!.trim()}"`);
      });
      return problems;
    });
  }

  /** The tooltip of a port of a node on the canvas (hover, as a user does). */
  async portLabel(id: string, kind: 'input' | 'output', index = 0): Promise<string> {
    const port = this.node(id).locator(`g.red-ui-flow-port-${kind} rect.red-ui-flow-port`).nth(index);
    await port.hover();
    const tip = this.page.locator('#red-ui-workspace-chart .red-ui-flow-port-tooltip');
    try {
      await tip.first().waitFor({ state: 'visible', timeout: 3000 });
      return (await tip.first().evaluate((el) => Array.from(el.querySelectorAll('text')).map((t) => t.textContent).join(' '))).replace(/\s+/g, ' ').trim();
    } catch {
      return '';
    } finally {
      await this.page.mouse.move(5, 5);
      await tip.first().waitFor({ state: 'detached', timeout: 3000 }).catch(() => undefined);
    }
  }

  /** Text of the label of a form field (the <label for=…>). */
  async labelOf(inputId: string): Promise<string> {
    return (await this.page.locator(`label[for="${inputId}"]`).first().innerText()).trim();
  }

  // ------------------------------------------------------------------ deploy

  /** Presses Deploy and waits for "Successfully deployed"; fails on any confirmation dialog. */
  async deploy(): Promise<void> {
    const btn = this.page.locator('#red-ui-header-button-deploy');
    if (await btn.evaluate((el) => el.classList.contains('disabled'))) throw new Error('Deploy is disabled: nothing changed');
    await btn.click();
    const outcome = await Promise.race([
      this.page.locator('.red-ui-notification-success').first().waitFor({ state: 'visible', timeout: 30_000 }).then(() => 'ok'),
      this.page.locator('.red-ui-notification .ui-dialog-buttonset, .red-ui-notification button').first().waitFor({ state: 'visible', timeout: 30_000 }).then(() => 'confirm'),
    ]);
    if (outcome !== 'ok') {
      const text = await this.page.locator('.red-ui-notification').last().innerText();
      await this.screenshot('deploy-confirmation');
      throw new Error(`Deploy asked for confirmation instead of deploying: ${text}`);
    }
    await this.page.waitForFunction(() => document.getElementById('red-ui-header-button-deploy')!.classList.contains('disabled'));
    // Notifications fade out by themselves; click it away so it cannot cover the canvas.
    await this.page.locator('.red-ui-notification-success').first().click().catch(() => undefined);
  }

  // ------------------------------------------------------------------ sidebar help

  /** Selects the node and opens the help tab; returns { title, text }. */
  async helpFor(id: string): Promise<{ title: string; text: string; html: string }> {
    await this.selectNode(id);
    await this.page.locator('#red-ui-tab-help-link-button').click();
    const title = this.page.locator('#red-ui-sidebar-content h1.red-ui-help-title, .red-ui-sidebar-help-stack h1.red-ui-help-title').first();
    await title.waitFor({ state: 'visible' });
    const section = title.locator('xpath=..');
    return {
      title: (await title.innerText()).trim(),
      text: await section.innerText(),
      html: await section.innerHTML(),
    };
  }

  // ------------------------------------------------------------------ user settings

  /** Chooses the editor language in User Settings → View and reloads the editor, as Node-RED asks. */
  async chooseLanguage(lang: string): Promise<void> {
    await this.page.locator('#red-ui-header-button-sidemenu').click();
    await this.page.locator('#menu-item-user-settings').click();
    const select = this.page.locator('#user-settings-editor-language');
    await select.waitFor({ state: 'visible' });
    await select.selectOption(lang);
    await this.screenshot(`user-settings-language-${lang}`, this.topTray());
    await this.page.locator('#node-dialog-ok').click(); // "Close" stores the choice
    await this.page.locator('#user-settings-editor-language').waitFor({ state: 'detached' });
    await this.page.reload();
    await this.waitUntilLoaded();
  }
}
