/**
 * A strict little XML reader for tests of the documents maildird emits
 * (autoconfig, autodiscover): it throws on anything that is not
 * well-formed XML 1.0 of the kind those documents use (one root, balanced
 * tags, quoted attributes, only the predefined entities and character
 * references, no DTD), and returns the element tree with namespaces
 * resolved, so tests check structure, not strings.
 */

export interface XmlElement {
  /** Local name, without prefix. */
  readonly name: string;
  /** The namespace URI in force for the element (default namespace or its prefix's). */
  readonly namespace: string | undefined;
  readonly attributes: Readonly<Record<string, string>>;
  readonly children: readonly XmlElement[];
  /** Concatenated character data directly inside the element. */
  readonly text: string;
}

const NAME = /^[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?/;

export function parseXml(source: string): XmlElement {
  let pos = 0;
  const fail = (why: string): never => {
    throw new Error(`not well-formed XML at offset ${pos}: ${why}`);
  };
  const skipSpace = () => {
    while (pos < source.length && /\s/.test(source.charAt(pos))) pos++;
  };
  const decode = (raw: string): string =>
    raw.replace(/&([^;]*);|&/g, (all, ref: string | undefined) => {
      if (ref === undefined) return fail('bare &');
      const named: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
      if (named[ref] !== undefined) return named[ref];
      const code = /^#x[0-9a-fA-F]+$/.test(ref) ? parseInt(ref.slice(2), 16) : /^#[0-9]+$/.test(ref) ? Number(ref.slice(1)) : NaN;
      return Number.isInteger(code) ? String.fromCodePoint(code) : fail(`unknown entity ${all}`);
    });

  if (source.startsWith('<?xml')) {
    const end = source.indexOf('?>');
    if (end < 0) fail('unterminated XML declaration');
    pos = end + 2;
  }
  const skipMisc = () => {
    for (;;) {
      skipSpace();
      if (source.startsWith('<!--', pos)) {
        const end = source.indexOf('-->', pos);
        if (end < 0) fail('unterminated comment');
        pos = end + 3;
      } else if (source.startsWith('<!', pos)) {
        fail('DTDs are not expected');
      } else {
        return;
      }
    }
  };

  const element = (scope: Readonly<Record<string, string>>): XmlElement => {
    if (source.charAt(pos) !== '<') fail('expected <');
    pos++;
    const name = NAME.exec(source.slice(pos))?.[0] ?? fail('expected an element name');
    pos += name.length;
    const rawAttributes: Record<string, string> = {};
    for (;;) {
      const before = pos;
      skipSpace();
      if (source.startsWith('/>', pos) || source.charAt(pos) === '>') break;
      if (pos === before) fail('expected space before an attribute');
      const attribute = NAME.exec(source.slice(pos))?.[0] ?? fail('expected an attribute name');
      pos += attribute.length;
      skipSpace();
      if (source.charAt(pos) !== '=') fail('expected =');
      pos++;
      skipSpace();
      const quote = source.charAt(pos);
      if (quote !== '"' && quote !== "'") fail('attribute value not quoted');
      const end = source.indexOf(quote, pos + 1);
      if (end < 0) fail('unterminated attribute value');
      const raw = source.slice(pos + 1, end);
      if (raw.includes('<')) fail('< in an attribute value');
      if (attribute in rawAttributes) fail(`repeated attribute ${attribute}`);
      rawAttributes[attribute] = decode(raw);
      pos = end + 1;
    }
    const namespaces: Record<string, string> = { ...scope };
    const attributes: Record<string, string> = {};
    for (const [key, value] of Object.entries(rawAttributes)) {
      if (key === 'xmlns') namespaces[''] = value;
      else if (key.startsWith('xmlns:')) namespaces[key.slice(6)] = value;
      else attributes[key] = value;
    }
    const colon = name.indexOf(':');
    const prefix = colon < 0 ? '' : name.slice(0, colon);
    const local = colon < 0 ? name : name.slice(colon + 1);
    if (prefix !== '' && namespaces[prefix] === undefined) fail(`undeclared prefix ${prefix}`);
    const namespace = namespaces[prefix];
    if (source.startsWith('/>', pos)) {
      pos += 2;
      return { name: local, namespace, attributes, children: [], text: '' };
    }
    pos++;
    const children: XmlElement[] = [];
    let text = '';
    for (;;) {
      if (pos >= source.length) fail(`unclosed <${name}>`);
      if (source.startsWith('</', pos)) {
        pos += 2;
        const closing = NAME.exec(source.slice(pos))?.[0];
        if (closing !== name) fail(`</${closing ?? ''}> closes <${name}>`);
        pos += name.length;
        skipSpace();
        if (source.charAt(pos) !== '>') fail('expected >');
        pos++;
        return { name: local, namespace, attributes, children, text };
      }
      if (source.startsWith('<!--', pos)) {
        const end = source.indexOf('-->', pos);
        if (end < 0) fail('unterminated comment');
        pos = end + 3;
      } else if (source.charAt(pos) === '<') {
        children.push(element(namespaces));
      } else {
        const end = source.indexOf('<', pos);
        const raw = source.slice(pos, end < 0 ? source.length : end);
        if (raw.includes('>') && raw.includes(']]>')) fail(']]> in text');
        text += decode(raw);
        pos += raw.length;
      }
    }
  };

  skipMisc();
  const root = element({});
  skipMisc();
  if (pos !== source.length) fail('content after the root element');
  return root;
}

/** The child elements named `name`. */
export function childrenNamed(parent: XmlElement, name: string): XmlElement[] {
  return parent.children.filter((child) => child.name === name);
}

/** The one child named `name`; throws when there is none or more than one. */
export function child(parent: XmlElement, name: string): XmlElement {
  const found = childrenNamed(parent, name);
  if (found.length !== 1) throw new Error(`<${parent.name}> has ${found.length} <${name}> children, expected 1`);
  return found[0] as XmlElement;
}

/** Child names and texts of a leaf-only element, in order: [['Type', 'POP3'], ...]. */
export function leaves(parent: XmlElement): [string, string][] {
  return parent.children.map((c) => [c.name, c.text]);
}
