#!/usr/bin/env node
/**
 * node-red-intune-instance: creates instance N of a shipped template (the
 * ACMP instance IntuneConnector_N / IntuneWorkflowEngine_N /
 * IntuneMobileDevices_N, or the 4me instance Intune4me_N) and writes it to a
 * file to import, or adds it to a running Node-RED through the Admin API.
 *
 * Secrets are read from environment variables named on the command line
 * (never from the command line itself, which other users can see), and are
 * only ever sent to Node-RED, never written to a file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { InstanceError, instanceSettings, instanceTabLabels, loadTemplate, makeInstance, missingCredentials, withoutCredentials, TEMPLATES, type InstanceCredentials } from './instance-template';
import { addInstance, adminClient } from './instance-admin';

const USAGE = `Usage: node-red-intune-instance --template <${Object.keys(TEMPLATES).join('|')}|flow.json> --instance <N> (--out <file> | --url <editor URL>) [options]

Where it goes
  --out FILE                 write the instance to a flow file (Import in the editor; no secrets are written)
  --url URL                  add it to a running Node-RED (Admin API), e.g. http://127.0.0.1:1880
  --token TOKEN              Admin API access token, when admin auth is on
  --user NAME --password-env VAR   or sign in with a user whose password is in $VAR

Intune connection
  --tenant-id ID             directory (tenant) id or domain
  --client-id GUID           application (client) id of the app registration
  --auth secret|certificate  how the app signs in
  --client-secret-env VAR    client secret from $VAR (with --url)
  --pfx FILE                 certificate with private key (.pfx/.p12) (with --url)
  --pfx-passphrase-env VAR   its password from $VAR
  --cloud global|usgov|usgovdod|china|custom
  --authority-host URL --graph-url URL --portal-url URL   endpoints for --cloud custom
  --ca FILE                  CA certificate (PEM) for every connection of the instance

ACMP (template acmp)
  --sics-host HOST --sics-port PORT --sics-user NAME --sics-password-env VAR
  --acmp-server ID[:VIRTUALROUTER[:ROUTINGKEY]]   an ACMP server on the bus (repeat for several)
  --acmp-target ID|*         the server the devices go to (default *)
  --on-demand-definition NAME   default IntuneMobileDevices_N
  --jobs-routing-key KEY     routing key of this instance's query-action jobs (default IntuneConnector_N.jobs)

4me (template 4me)
  --fourme-account ID --fourme-environment production|qa|demo|custom --fourme-region global|au|uk|us|ch
  --fourme-graphql-url URL   (sets --fourme-environment custom)
  --fourme-token-env VAR     personal access token from $VAR (with --url)
  --platforms LIST           platforms to import, e.g. windows,macos,ios,android,linux,other (default: none)

Schedules and anything else
  --full-scan-hours H --incremental-minutes M --compliance-minutes M
  --env NAME=VALUE           set a flow environment variable of the template (repeatable);
                             yes/no variables such as READ_SOFTWARE take true or false
  --set TYPE.PROP=VALUE      set a property on every node of a type, VALUE as JSON or text (repeatable);
                             yes/no properties take true or false
`;


function secretFromEnv(flag: string, name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  const v = process.env[name];
  if (!v) throw new InstanceError(`${flag} names $${name}, which is not set or empty`);
  return v;
}

function pairs(list: string[] | undefined, flag: string): Array<[string, string]> {
  return (list ?? []).map((item) => {
    const i = item.indexOf('=');
    if (i <= 0) throw new InstanceError(`${flag} expects NAME=VALUE, not ${JSON.stringify(item)}`);
    return [item.slice(0, i), item.slice(i + 1)];
  });
}

function jsonOrText(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

export async function main(argv: string[]): Promise<string> {
  const { values: a } = parseArgs({
    args: argv,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      template: { type: 'string' },
      instance: { type: 'string' },
      out: { type: 'string' },
      url: { type: 'string' },
      token: { type: 'string' },
      user: { type: 'string' },
      'password-env': { type: 'string' },
      'tenant-id': { type: 'string' },
      'client-id': { type: 'string' },
      auth: { type: 'string' },
      'client-secret-env': { type: 'string' },
      pfx: { type: 'string' },
      'pfx-passphrase-env': { type: 'string' },
      cloud: { type: 'string' },
      'authority-host': { type: 'string' },
      'graph-url': { type: 'string' },
      'portal-url': { type: 'string' },
      ca: { type: 'string' },
      'sics-host': { type: 'string' },
      'sics-port': { type: 'string' },
      'sics-user': { type: 'string' },
      'sics-password-env': { type: 'string' },
      'acmp-server': { type: 'string', multiple: true },
      'acmp-target': { type: 'string' },
      'on-demand-definition': { type: 'string' },
      'jobs-routing-key': { type: 'string' },
      'fourme-account': { type: 'string' },
      'fourme-environment': { type: 'string' },
      'fourme-region': { type: 'string' },
      'fourme-graphql-url': { type: 'string' },
      'fourme-token-env': { type: 'string' },
      platforms: { type: 'string' },
      'full-scan-hours': { type: 'string' },
      'incremental-minutes': { type: 'string' },
      'compliance-minutes': { type: 'string' },
      env: { type: 'string', multiple: true },
      set: { type: 'string', multiple: true },
    },
  });
  if (a.help) return USAGE;
  if (!a.template) throw new InstanceError('--template is required');
  const n = Number(a.instance);
  if (!a.instance || !Number.isInteger(n)) throw new InstanceError('--instance N is required (a whole number from 1 to 999)');
  if (!a.out === !a.url) throw new InstanceError('Give exactly one of --out FILE and --url URL');

  const template = loadTemplate(a.template);
  const { env, nodeProps: props } = instanceSettings(template, n, a);
  for (const [k, v] of pairs(a.env, '--env')) env[k] = v;
  const setProp = (type: string, prop: string, value: unknown) => {
    if (value !== undefined) (props[type] ??= {})[prop] = value;
  };
  for (const [k, v] of pairs(a.set, '--set')) {
    const dot = k.indexOf('.');
    if (dot <= 0) throw new InstanceError(`--set expects TYPE.PROP=VALUE, not ${JSON.stringify(k)}`);
    setProp(k.slice(0, dot), k.slice(dot + 1), jsonOrText(v));
  }

  const pfxFile = a.pfx;
  const credentials: InstanceCredentials = {
    'intune-config': {
      clientSecret: secretFromEnv('--client-secret-env', a['client-secret-env']),
      pfx: pfxFile ? fs.readFileSync(pfxFile).toString('base64') : undefined,
      pfxName: pfxFile ? path.basename(pfxFile) : undefined,
      passphrase: secretFromEnv('--pfx-passphrase-env', a['pfx-passphrase-env']),
    },
    'intune-acmp-config': { user: a['sics-user'], password: secretFromEnv('--sics-password-env', a['sics-password-env']) },
    'intune-4me-config': { token: secretFromEnv('--fourme-token-env', a['fourme-token-env']) },
  };
  const anySecret = Object.values(credentials).some((c) => Object.entries(c).some(([k, v]) => v !== undefined && k !== 'user' && k !== 'pfxName'));
  if (a.out && anySecret) throw new InstanceError('Secrets are never written to files: use --url to send them to Node-RED, or enter them in the editor after importing');

  const nodes = makeInstance(template, { instance: n, env, nodeProps: props, caFile: a.ca ? path.resolve(a.ca) : undefined, credentials: a.url ? credentials : undefined });
  const tabs = instanceTabLabels(nodes).join(', ');
  if (a.out) {
    fs.writeFileSync(a.out, JSON.stringify(withoutCredentials(nodes), null, 2) + '\n');
    const todo = missingCredentials(withoutCredentials(nodes));
    return [`Wrote ${tabs} to ${a.out}. Import it in the Node-RED editor (Menu > Import), then enter:`, ...todo.map((t) => `  - ${t}`)].join('\n');
  }
  const admin = await adminClient(a.url!, { token: a.token, username: a.user, password: secretFromEnv('--password-env', a['password-env']) });
  await addInstance(admin, nodes);
  const todo = missingCredentials(nodes);
  return [`Added ${tabs} to ${a.url}.`, ...(todo.length ? ['Still to enter in the editor:', ...todo.map((t) => `  - ${t}`)] : [])].join('\n');
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (out) => console.log(out),
    (err: Error) => {
      const known = err instanceof InstanceError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
      console.error(known ? `node-red-intune-instance: ${err.message}\n\nRun with --help for the options.` : err.stack);
      process.exit(2);
    },
  );
}
