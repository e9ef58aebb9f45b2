import {Environment} from '@marcbachmann/cel-js'
const env = new Environment().registerVariable('s','string').registerFunction('string.re2Matches(string): bool', (a,b)=>true).registerFunction('re2Matches(string, string): bool', (a,b)=>true)
console.log(JSON.stringify(env.parse("s.matches('a+') || matches(s, 'b')").ast))
const r = env.check("s + 1 == 'x'"); console.log(r.error.node, r.error.pos, Object.getOwnPropertyNames(r.error))
try { env.parse("s &&& b") } catch(e) { console.log(Object.getOwnPropertyNames(e), e.node, e.pos) }
console.log(env.check("s.re2Matches('x')").valid)
