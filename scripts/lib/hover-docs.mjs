// Hover docs: which exported symbols of the packages' declarations (and the public members of exported
// classes and interfaces) have no doc comment. Used by scripts/check-type-tests.mjs. Op classes' own
// fields (fd, buf, ...) are exempt: the op's class doc and its constructor say what they are.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { root } from './tsc.mjs';

export function undocumented() {
  const pkgs = readdirSync(join(root, 'packages')).filter((p) => existsSync(join(root, 'packages', p, 'dist', 'index.d.ts')));
  const files = pkgs.map((p) => join(root, 'packages', p, 'dist', 'index.d.ts'));
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: ['node'],
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  let total = 0;
  const missing = [];
  const check = (s, name) => {
    total++;
    if (ts.displayPartsToString(s.getDocumentationComment(checker)).trim() === '') missing.push(name);
  };
  files.forEach((f, i) => {
    const mod = checker.getSymbolAtLocation(program.getSourceFile(f));
    for (const exported of checker.getExportsOfModule(mod)) {
      const sym = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const name = `@ringio/${pkgs[i]}: ${exported.name}`;
      check(sym, name);
      if (!(sym.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Interface))) continue;
      const isOp = /Op$/.test(exported.name);
      for (const m of checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(sym))) {
        const decl = m.declarations?.[0];
        if (decl === undefined || decl.getSourceFile().fileName.includes('node_modules')) continue;
        if (ts.getCombinedModifierFlags(decl) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
        if (m.name.startsWith('_') || m.name.startsWith('__#') || m.name.startsWith('#')) continue;
        if (isOp && (m.flags & ts.SymbolFlags.Property)) continue;
        check(m, `${name}.${m.name}`);
      }
    }
  });
  return { total, missing };
}
