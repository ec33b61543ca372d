/**
 * The "Verify connection" buttons of the config dialogs, pressed as a user
 * presses them, and what the dialog then shows; plus the checks that a
 * secret typed into a dialog never comes back in clear text.
 */
import type { Response } from 'playwright-core';
import type { Editor } from './editor';
import { squash } from './catalog';

export interface VerifyAnswer {
  /** "ok", "error" or "warning" (the box's is-… class). */
  kind: string;
  /** Everything the box shows, whitespace collapsed. */
  text: string;
  /** Each line of the answer (the box's line elements), in order. */
  lines: string[];
  /** Every text the box showed from the click on (progress included). */
  seen: string[];
}

/**
 * Clicks `button` and waits for the answer in `box`: visible, no spinner
 * left, an is-ok / is-error / is-warning class, and the button usable again.
 */
export async function pressVerify(ed: Editor, button: string, box: string, lineSelector: string, timeoutMs = 45_000): Promise<VerifyAnswer> {
  await ed.page.locator(box).evaluate((el) => {
    const seen: string[] = [];
    (window as any).__verifySeen = seen;
    const old = (window as any).__verifyObserver as MutationObserver | undefined;
    old?.disconnect();
    const obs = new MutationObserver(() => {
      const t = (el as HTMLElement).innerText.replace(/\s+/g, ' ').trim();
      if (t && seen[seen.length - 1] !== t) seen.push(t);
    });
    obs.observe(el, { childList: true, subtree: true, characterData: true });
    (window as any).__verifyObserver = obs;
  });
  await ed.page.locator(button).click();
  await ed.page.waitForFunction(
    ({ sel, btn }) => {
      const b = document.querySelector(sel) as HTMLElement | null;
      const usable = !(document.querySelector(btn) as HTMLButtonElement | null)?.disabled;
      return usable && !!b && b.style.display !== 'none' && !b.querySelector('.fa-spinner') && /\bis-(ok|error|warning)\b/.test(b.className);
    },
    { sel: box, btn: button },
    { timeout: timeoutMs },
  );
  const el = ed.page.locator(box);
  const cls = (await el.getAttribute('class')) ?? '';
  return {
    kind: /\bis-(ok|error|warning)\b/.exec(cls)?.[1] ?? '',
    text: squash(await el.innerText()),
    lines: (await el.locator(lineSelector).allInnerTexts()).map(squash),
    seen: await ed.page.evaluate(() => (window as any).__verifySeen as string[]),
  };
}

/** Collects the bodies of the admin responses whose URL matches `re` (from now on). */
export function recordResponses(ed: Editor, re: RegExp): string[] {
  const bodies: string[] = [];
  ed.page.on('response', (r: Response) => {
    if (re.test(r.url())) void r.text().then((b) => bodies.push(b)).catch(() => undefined);
  });
  return bodies;
}

/** The secrets (of at least 6 characters) that occur in `text`, for "never in clear text" checks. */
export function leaked(text: string, secrets: string[]): string[] {
  return secrets.filter((s) => s.length >= 6 && text.includes(s));
}

/** Values of the password inputs of the open dialog that are shown in clear text (type other than password). */
export async function unmaskedSecrets(ed: Editor): Promise<string[]> {
  return ed.topTray().evaluate((root) =>
    Array.from(root.querySelectorAll('input'))
      .filter((i) => /(password|secret|token|passphrase)$/i.test(i.id) && (i as HTMLInputElement).value && (i as HTMLInputElement).type !== 'password' && (i as HTMLElement).offsetParent !== null)
      .map((i) => i.id),
  );
}
