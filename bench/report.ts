import type { BenchResults } from './scenarios';
import type { MachineInfo } from './proc';

export function renderReport(r: BenchResults & { machine: MachineInfo }): string {
  return '```json\n' + JSON.stringify(r, null, 2) + '\n```\n';
}
