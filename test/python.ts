/**
 * Python with numpy for interop tests: files written by numpy are read by cotrain and the other
 * way round.
 *
 * The interpreter is `$COTRAIN_PYTHON` when set, else the first of `python3` and
 * `/usr/bin/python3` that can `import numpy`. When none can, the tests fail loudly (they never
 * skip): install numpy (Debian: `apt-get install python3-numpy`).
 *
 * @example
 * ```ts ignore
 * import { runPython } from "./python.ts";
 * const out = await runPython("import sys, numpy; print(numpy.arange(int(sys.argv[1])).sum())", ["4"]);
 * console.log(out.trim()); // "6"
 * ```
 * @module
 */

let found: Promise<string> | undefined;

async function importsNumpy(python: string): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(python, {
      args: ["-c", "import numpy"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false; // not installed, not executable
  }
}

async function find(): Promise<string> {
  const fromEnv = Deno.env.get("COTRAIN_PYTHON");
  if (fromEnv) {
    if (await importsNumpy(fromEnv)) return fromEnv;
    throw new Error(
      `COTRAIN_PYTHON=${fromEnv} cannot import numpy: install numpy for it ` +
        `(Debian: apt-get install python3-numpy) or unset COTRAIN_PYTHON`,
    );
  }
  const tried = ["python3", "/usr/bin/python3"];
  for (const python of tried) {
    if (await importsNumpy(python)) return python;
  }
  throw new Error(
    `no Python with numpy found (tried ${tried.join(", ")}; set COTRAIN_PYTHON to choose one): ` +
      `install numpy (Debian: apt-get install python3-numpy)`,
  );
}

/**
 * The path of a Python interpreter that can `import numpy`; throws when there is none.
 *
 * @example
 * ```ts ignore
 * import { pythonWithNumpy } from "./python.ts";
 * console.log(await pythonWithNumpy()); // e.g. "/usr/bin/python3"
 * ```
 */
export function pythonWithNumpy(): Promise<string> {
  found ??= find();
  found.catch(() => found = undefined); // look again next time after a failure
  return found;
}

/**
 * Runs `code` with {@linkcode pythonWithNumpy} (`python -c code ...args`) and returns its stdout;
 * throws with stderr when it exits non-zero.
 *
 * @example
 * ```ts ignore
 * import { runPython } from "./python.ts";
 * console.log(await runPython("import numpy as np; print(np.float16(1).tobytes().hex())")); // "003c"
 * ```
 */
export async function runPython(code: string, args: string[] = []): Promise<string> {
  const python = await pythonWithNumpy();
  const { code: exit, stdout, stderr } = await new Deno.Command(python, {
    args: ["-c", code, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout);
  if (exit !== 0) {
    throw new Error(
      `${python} exited with ${exit}:\n${new TextDecoder().decode(stderr)}${
        out ? `\nstdout:\n${out}` : ""
      }`,
    );
  }
  return out;
}
