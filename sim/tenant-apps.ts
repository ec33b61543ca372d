/**
 * The discovered apps of the simulated tenant (what Intune's AppInvRawData
 * report lists), a pure function of (seed, device position, platform) like
 * the rest of the tenant: nothing is held in memory but the tests' changes.
 *
 * Mix (invented, shaped after what discovered-apps reports look like):
 * Windows PCs carry 25-70 apps (a core of common titles at high prevalence -
 * browsers, Office, runtimes, Visual C++ redistributables in several
 * versions - plus a long tail), Macs 15-45, Android 8-35, iOS/iPadOS 5-25,
 * dedicated Android devices a handful, Linux none (Intune lists no apps for
 * Linux: assumed). Thousands of distinct titles come from a generated tail
 * per platform. A title's version differs between devices (one of three
 * releases), so the same title shows in several versions across the tenant.
 */
import crypto from 'node:crypto';

export interface SimApp {
  key: string;
  name: string;
  publisher: string;
  version: string;
  /** The report's Platform value (replaceLocalizableValues). */
  platform: string;
}

type Family = 'Windows' | 'macOS' | 'iOS' | 'Android';

/** The tenant's deterministic hashing (one definition for devices and apps). */
export function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d);
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}
export function h3(a: number, b: number, c: number): number {
  return mix32((mix32((mix32(a ^ 0x9e3779b9) ^ b) >>> 0) + Math.imul(c, 0x27d4eb2d)) >>> 0);
}
const unit = (h: number) => h / 4294967296;

/** [name, publisher, prevalence] of titles most devices of a platform carry. */
const CORE: Record<Family, ReadonlyArray<readonly [string, string, number]>> = {
  Windows: [
    ['Microsoft Edge', 'Microsoft Corporation', 0.99],
    ['Microsoft 365 Apps for enterprise - de-de', 'Microsoft Corporation', 0.85],
    ['Microsoft Teams', 'Microsoft Corporation', 0.9],
    ['Microsoft OneDrive', 'Microsoft Corporation', 0.95],
    ['Microsoft Visual C++ 2015-2022 Redistributable (x64)', 'Microsoft Corporation', 0.9],
    ['Microsoft Visual C++ 2015-2022 Redistributable (x86)', 'Microsoft Corporation', 0.85],
    ['Microsoft Visual C++ 2013 Redistributable (x64)', 'Microsoft Corporation', 0.5],
    ['Microsoft Update Health Tools', 'Microsoft Corporation', 0.8],
    ['Microsoft Intune Management Extension', 'Microsoft Corporation', 0.9],
    ['Company Portal', 'Microsoft Corporation', 0.7],
    ['Google Chrome', 'Google LLC', 0.7],
    ['Mozilla Firefox (x64 de)', 'Mozilla', 0.3],
    ['Adobe Acrobat Reader (64-bit)', 'Adobe', 0.75],
    ['7-Zip 23.01 (x64)', 'Igor Pavlov', 0.55],
    ['Notepad++ (64-bit x64)', 'Notepad++ Team', 0.35],
    ['VLC media player', 'VideoLAN', 0.3],
    ['Zoom Workplace', 'Zoom Video Communications, Inc.', 0.4],
    ['Cisco Secure Client - AnyConnect VPN', 'Cisco Systems, Inc.', 0.45],
    ['Java 8 Update 401 (64-bit)', 'Oracle Corporation', 0.2],
    ['Realtek High Definition Audio Driver', 'Realtek Semiconductor Corp.', 0.6],
    ['Intel® Graphics Driver', 'Intel Corporation', 0.55],
    ['Dell Command | Update', 'Dell Inc.', 0.35],
    ['Lenovo Vantage Service', 'Lenovo Group Ltd.', 0.3],
    ['ACMP Client', 'Aagon GmbH', 0.25],
  ],
  macOS: [
    ['Microsoft Edge', 'Microsoft Corporation', 0.8],
    ['Microsoft Word', 'Microsoft Corporation', 0.85],
    ['Microsoft Excel', 'Microsoft Corporation', 0.85],
    ['Microsoft Outlook', 'Microsoft Corporation', 0.85],
    ['Microsoft Teams', 'Microsoft Corporation', 0.85],
    ['Company Portal', 'Microsoft Corporation', 0.9],
    ['Google Chrome', 'Google LLC', 0.6],
    ['Safari', 'Apple Inc.', 0.99],
    ['Keynote', 'Apple Inc.', 0.5],
    ['Zoom', 'Zoom Video Communications, Inc.', 0.4],
  ],
  iOS: [
    ['Microsoft Authenticator', 'Microsoft Corporation', 0.9],
    ['Microsoft Outlook', 'Microsoft Corporation', 0.8],
    ['Microsoft Teams', 'Microsoft Corporation', 0.75],
    ['Intune Company Portal', 'Microsoft Corporation', 0.7],
    ['Microsoft Edge: AI browser', 'Microsoft Corporation', 0.4],
    ['WhatsApp Messenger', 'WhatsApp Inc.', 0.3],
  ],
  Android: [
    ['Microsoft Authenticator', 'Microsoft Corporation', 0.9],
    ['Intune Company Portal', 'Microsoft Corporation', 0.95],
    ['Microsoft Outlook', 'Microsoft Corporation', 0.8],
    ['Microsoft Teams', 'Microsoft Corporation', 0.7],
    ['Google Play Services', 'Google LLC', 0.99],
    ['Android System WebView', 'Google LLC', 0.95],
    ['Chrome', 'Google LLC', 0.8],
  ],
};

/** Distinct generated titles per platform (the long tail). */
const TAIL: Record<Family, number> = { Windows: 5000, macOS: 1200, iOS: 1500, Android: 1500 };

const VENDORS = [
  'Contoso Ltd.', 'Fabrikam, Inc.', 'Northwind Traders', 'Adatum Corporation', 'Litware, Inc.', 'Proseware, Inc.', 'Tailspin Toys',
  'Wingtip Toys', 'Woodgrove Bank', 'Alpine Ski House', 'Coho Winery', 'Fourth Coffee', 'Lamna Healthcare', 'Margie\'s Travel',
  'Trey Research', 'VanArsdel, Ltd.', 'Wide World Importers', 'Blue Yonder Airlines', 'City Power & Light', 'Humongous Insurance',
  'Graphic Design Institute', 'School of Fine Art', 'Relecloud', 'Munson\'s Pickles', 'Datev eG', 'Bürosoft GmbH', '株式会社サンプル',
];
const WORDS_A = ['Smart', 'Pro', 'Cloud', 'Secure', 'Rapid', 'Data', 'Net', 'Easy', 'Power', 'Open', 'Field', 'Time', 'Print', 'Scan', 'Sync', 'Mobile', 'Office', 'Asset', 'Report', 'Zeit'];
const WORDS_B = ['Manager', 'Studio', 'Viewer', 'Agent', 'Client', 'Toolkit', 'Reader', 'Editor', 'Connector', 'Planner', 'Monitor', 'Suite', 'Assistant', 'Desk', 'Hub', 'Erfassung'];

function familyOf(platform: string): Family | null {
  if (platform === 'windows') return 'Windows';
  if (platform === 'macos') return 'macOS';
  if (platform === 'ios' || platform === 'ipados') return 'iOS';
  if (platform.startsWith('android')) return 'Android';
  return null;
}

/** How many apps a device of this platform carries: [least, most]. */
function countRange(platform: string): [number, number] {
  switch (platform) {
    case 'windows':
      return [25, 70];
    case 'macos':
      return [15, 45];
    case 'ios':
    case 'ipados':
      return [5, 25];
    case 'android-ded':
      return [2, 6];
    default:
      return [8, 35];
  }
}

const FAMILY_NO: Record<Family, number> = { Windows: 1, macOS: 2, iOS: 3, Android: 4 };

/** An ApplicationKey-like opaque id of title + publisher + version + platform. */
export function simAppKey(name: string, publisher: string, version: string, platform: string): string {
  return crypto.createHash('sha1').update(`${platform}\u0000${publisher}\u0000${name}\u0000${version}`).digest('hex');
}

/** Per-device changes made by tests, keyed by app name. */
interface AppChanges {
  removed: Set<string>;
  versions: Map<string, string>;
}

export class SimAppInventory {
  private readonly changes = new Map<number, AppChanges>();
  /** (family, title, release) → app: a bounded set (titles × 3), so a 100,000-device report does not hash 4 M times. */
  private readonly made = new Map<number, SimApp>();

  constructor(private readonly seed: number) {}

  private title(f: Family, t: number): { name: string; publisher: string } {
    const h = h3(this.seed, FAMILY_NO[f] * 100_000 + t, 601);
    const vendor = VENDORS[h % VENDORS.length];
    const a = WORDS_A[(h >>> 8) % WORDS_A.length];
    const b = WORDS_B[(h >>> 16) % WORDS_B.length];
    const short = vendor.split(/[ ,]/)[0];
    return { name: `${short} ${a} ${b} ${1 + (t % 7)}`, publisher: vendor };
  }

  /** A title's release `r` (0 = newest, 1, 2 older): versions differ between devices. */
  private version(f: Family, id: number, r: number): string {
    const h = h3(this.seed, FAMILY_NO[f] * 1_000_000 + id, 602);
    const major = 1 + (h % 30);
    const minor = 3 + ((h >>> 8) % 20);
    const build = (h >>> 16) % 9000;
    return f === 'Windows' ? `${major}.${Math.max(0, minor - r)}.${build + 100 * (2 - r)}.0` : `${major}.${Math.max(0, minor - r)}.${(h >>> 24) % 10}`;
  }

  /** The apps of the device at position i (a fresh list of shared, frozen apps, sorted by name). */
  appsAt(i: number, platform: string): SimApp[] {
    const f = familyOf(platform);
    if (!f) return [];
    const [lo, hi] = countRange(platform);
    const want = lo + (h3(this.seed, i, 610) % (hi - lo + 1));
    const chosen = new Map<number, true>();
    const core = CORE[f];
    core.forEach(([, , p], k) => {
      if (chosen.size < want && unit(h3(this.seed, i, 620 + k)) < p) chosen.set(k, true);
    });
    // Long tail, skewed towards the first titles (a few are common, most are rare).
    for (let n = 0; chosen.size < want && n < want * 4; n++) {
      const t = Math.floor(TAIL[f] * Math.pow(unit(h3(this.seed, i, 700 + n)), 2.5));
      chosen.set(core.length + t, true);
    }
    const ch = this.changes.get(i);
    const out: SimApp[] = [];
    for (const id of chosen.keys()) {
      const release = h3(this.seed, i, 900 + id) % 3;
      const app = this.app(f, id, release);
      if (!ch) {
        out.push(app);
        continue;
      }
      if (ch.removed.has(app.name)) continue;
      const version = ch.versions.get(app.name);
      out.push(version === undefined ? app : Object.freeze({ ...app, version, key: simAppKey(app.name, app.publisher, version, f) }));
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Title `id` of family `f` in release `r` (shared, frozen). */
  private app(f: Family, id: number, r: number): SimApp {
    const k = (FAMILY_NO[f] * 100_000 + id) * 4 + r;
    let a = this.made.get(k);
    if (!a) {
      const core = CORE[f];
      const { name, publisher } = id < core.length ? { name: core[id][0], publisher: core[id][1] } : this.title(f, id - core.length);
      const version = this.version(f, id, r);
      a = Object.freeze({ key: simAppKey(name, publisher, version, f), name, publisher, version, platform: f });
      this.made.set(k, a);
    }
    return a;
  }

  private changesOf(i: number): AppChanges {
    let c = this.changes.get(i);
    if (!c) {
      c = { removed: new Set(), versions: new Map() };
      this.changes.set(i, c);
    }
    return c;
  }

  /** Uninstall the app called `name` from device position i. */
  remove(i: number, name: string): void {
    this.changesOf(i).removed.add(name);
  }

  /** Update the app called `name` on device position i to `version`. */
  setVersion(i: number, name: string, version: string): void {
    this.changesOf(i).versions.set(name, version);
  }
}
