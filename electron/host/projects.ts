// ProjectService (electron/contract.ts) in Node: open/save Strata project files (validated through
// engine/spec/validate.ts, written atomically), autosave into the host's data folder, the recent
// list, and the template gallery read from templates/. Not here: dialogs (injected by the Electron
// main process as `choosePath`), runs or exports.
import { promises as fs } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import {
  type AutosaveInfo,
  type ChoosePathRequest,
  type OpenedProject,
  type ProjectService,
  type RecentProject,
  type SavedProject,
  StrataHostError,
  type TemplateSummary,
} from '../contract.js';
import { type StrataDocument, flattenStack } from '../../engine/spec/document.js';
import { parseDocument } from '../../engine/spec/validate.js';
import { fsError, readJsonFile, writeFileAtomic } from './files.js';

export interface ProjectServiceOptions {
  /** Relative project paths resolve here. */
  workspaceDir: string;
  /** Host-private folder: autosave.json and recent.json. */
  dataDir: string;
  /** Folder of template documents (`<name>.json`). */
  templatesDir: string;
  /** Gallery titles and order (templates/index.ts TEMPLATES); files not in it are listed after. */
  templateIndex?: ReadonlyArray<{ name: string; title: string; description: string }>;
  /** Native dialog (Electron); absent in browser mode. */
  choosePath?: (request: ChoosePathRequest) => Promise<string | null>;
}

const RECENT_LIMIT = 20;
const TEMPLATE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Validates an untrusted document value; invalid_document names file, layer, block and field. */
export function validateDocument(value: unknown, file: string): { doc: StrataDocument; result: Extract<ReturnType<typeof parseDocument>, { ok: true }> } {
  const result = parseDocument(value);
  if (!result.ok) {
    const first = result.errors[0]?.message ?? 'invalid document';
    const more = result.errors.length > 1 ? ` (and ${result.errors.length - 1} more)` : '';
    throw new StrataHostError({ code: 'invalid_document', message: `${file}: ${first}${more}`, file, issues: result.errors });
  }
  return { doc: result.doc, result };
}

function requireString(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0)
    throw new StrataHostError({ code: 'bad_request', message: `${what} must be a non-empty string` });
  return value;
}

export function createProjectService(options: ProjectServiceOptions): ProjectService {
  const recentFile = join(options.dataDir, 'recent.json');
  const autosaveFile = join(options.dataDir, 'autosave.json');
  const resolvePath = (path: unknown) => {
    const p = requireString(path, 'project path');
    return isAbsolute(p) ? p : resolve(options.workspaceDir, p);
  };

  async function readRecent(): Promise<Array<Omit<RecentProject, 'exists'>>> {
    try {
      const value = await readJsonFile(recentFile);
      return Array.isArray(value)
        ? value.filter((r): r is Omit<RecentProject, 'exists'> => r && typeof r.path === 'string' && typeof r.openedAt === 'string')
        : [];
    } catch {
      return []; // a missing or damaged recent list is just empty; it is rebuilt on the next open
    }
  }

  async function remember(path: string, name: string): Promise<void> {
    const list = (await readRecent()).filter((r) => r.path !== path);
    list.unshift({ path, name, openedAt: new Date().toISOString() });
    await writeFileAtomic(recentFile, JSON.stringify(list.slice(0, RECENT_LIMIT), null, 2));
  }

  async function loadTemplate(name: unknown): Promise<StrataDocument> {
    const n = requireString(name, 'template name');
    if (!TEMPLATE_NAME.test(n))
      throw new StrataHostError({ code: 'bad_request', message: `template name ${JSON.stringify(n)} is not a template file stem` });
    const file = join(options.templatesDir, `${n}.json`);
    try {
      return validateDocument(await readJsonFile(file), file).doc;
    } catch (error) {
      if (error instanceof StrataHostError && error.code === 'not_found')
        throw new StrataHostError({ code: 'not_found', message: `no template named '${n}' in ${options.templatesDir}`, file });
      throw error;
    }
  }

  return {
    async open(path) {
      const file = resolvePath(path);
      const { doc, result } = validateDocument(await readJsonFile(file), file);
      await remember(file, doc.model.name);
      const opened: OpenedProject = { path: file, doc, warnings: result.warnings };
      if (result.migratedFrom !== undefined) opened.migratedFrom = result.migratedFrom;
      return opened;
    },

    async save(path, doc) {
      const file = resolvePath(path);
      const { doc: valid } = validateDocument(doc, file);
      let bytes: number;
      try {
        bytes = await writeFileAtomic(file, `${JSON.stringify(valid, null, 2)}\n`);
      } catch (error) {
        throw fsError(error, file, 'write');
      }
      await remember(file, valid.model.name);
      return { path: file, bytes, savedAt: new Date().toISOString() };
    },

    async autosave(doc, projectPath) {
      // Never lose work: an autosave keeps even a document that does not validate yet.
      if (doc === null || typeof doc !== 'object')
        throw new StrataHostError({ code: 'bad_request', message: 'autosave: the document must be an object' });
      const savedAt = new Date().toISOString();
      const record: AutosaveInfo = { doc, savedAt };
      if (typeof projectPath === 'string' && projectPath) record.projectPath = projectPath;
      let bytes: number;
      try {
        bytes = await writeFileAtomic(autosaveFile, JSON.stringify(record));
      } catch (error) {
        throw fsError(error, autosaveFile, 'write');
      }
      return { path: autosaveFile, bytes, savedAt } satisfies SavedProject;
    },

    async restoreAutosave() {
      let raw: unknown;
      try {
        raw = await readJsonFile(autosaveFile);
      } catch (error) {
        if (error instanceof StrataHostError && error.code === 'not_found') return null;
        throw error;
      }
      const record = raw as Partial<AutosaveInfo>;
      if (!record || typeof record !== 'object' || !record.doc || typeof record.savedAt !== 'string')
        throw new StrataHostError({ code: 'corrupt_file', message: `${autosaveFile}: not an autosave record (needs doc and savedAt)`, file: autosaveFile });
      return record as AutosaveInfo;
    },

    async recent() {
      const list = await readRecent();
      return Promise.all(
        list.map(async (r) => ({ ...r, exists: await fs.stat(r.path).then((s) => s.isFile(), () => false) })),
      );
    },

    async listTemplates() {
      let names: string[];
      try {
        names = (await fs.readdir(options.templatesDir))
          .filter((f) => f.endsWith('.json'))
          .map((f) => basename(f, '.json'))
          .filter((n) => TEMPLATE_NAME.test(n))
          .sort();
      } catch (error) {
        throw fsError(error, options.templatesDir, 'list templates in');
      }
      const index = new Map((options.templateIndex ?? []).map((entry) => [entry.name, entry]));
      const out: TemplateSummary[] = [];
      for (const name of names) {
        const doc = await loadTemplate(name);
        const meta = index.get(name);
        out.push({
          name,
          title: meta?.title ?? doc.model.name,
          description: meta?.description ?? '',
          layers: flattenStack(doc.model.stack).length,
        });
      }
      // Gallery order: the index's order first, then the rest alphabetically.
      const order = [...index.keys()];
      const rank = (n: string) => (order.includes(n) ? order.indexOf(n) : order.length);
      return out.sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name));
    },

    loadTemplate,

    async choosePath(request) {
      if (!options.choosePath)
        throw new StrataHostError({ code: 'unavailable', message: 'this host has no native file dialogs (browser mode): type a path instead' });
      if (!request || (request.mode !== 'open' && request.mode !== 'save' && request.mode !== 'folder'))
        throw new StrataHostError({ code: 'bad_request', message: "choosePath: mode must be 'open', 'save' or 'folder'" });
      return options.choosePath(request);
    },
  };
}
