"""Closed word classes the rule needs to read an answer's structure (function words, name prefixes, class nouns).

These are grammar, not knowledge: they say which words frame, qualify or build a name, never which name is right.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Function words, framing words and adverbs: a capitalised one ("It", "Probably") is not part of a name.
STOP = _words("""
a an the and or but if then so thus therefore hence it its it's is was are were be been being am this that these those
there here which who whom whose what where when why how in on at by for from to of with within without into onto over
under about above below after before between through during near than as like his her their our your my i we you he
she they them him me us yes no not also only just both either neither nor all any each every some most more less many
much few one answer answers final correct right text document report passage article table according based given
stated mentioned shown named called known probably possibly perhaps maybe likely definitely certainly clearly surely
indeed actually really exactly approximately around roughly nearly almost ok okay well hmm note see do does did has
have had will would can could should must may might shall
""")
# Titles and honorifics: before a name they leave it the same person ("President George Washington").
TITLES = _words("""
mr mrs ms miss dr prof professor president king queen prince princess sir dame lord lady general gen captain capt
senator sen governor gov mayor judge justice pope emperor empress bishop archbishop cardinal reverend rev chancellor
minister premier chief director ceo chairman chairwoman sheikh sultan tsar czar duke duchess count countess baron
baroness admiral colonel col major maj lieutenant lt sergeant sgt coach dean
""")
# Words that, placed before a name, make another place or thing ("New York", "Lake Victoria", "South Georgia").
PREFIXES = _words("""
new north south east west northern southern eastern western upper lower greater old little great saint st san santa
sainte fort ft mount mt port lake cape isle central middle inner outer grand royal east-end west-end los las el la le
""")
# Nouns that, placed after a name, make another thing named after it ("Mexico City", "Jordan River", "Paris
# Agreement"); scale words and units do the same to a number ("3 million").
CLASS_NOUNS = _words("""
city town village county state province region district territory river lake sea ocean bay gulf strait channel island
islands isle mountain mountains hill hills valley basin peninsula desert forest falls park street avenue road square
bridge tower building airport station harbour harbor university college school academy institute museum gallery
library hospital church cathedral temple mosque palace castle hall house center centre stadium arena memorial
monument agreement treaty accord convention act law award awards prize cup trophy festival tournament championship
league club team company corporation group foundation party army navy empire kingdom republic dynasty family band
records publishing press times post journal magazine airlines airways bank hotel theatre theater studio studios fc
metropolitan metro area tech war battle movement
""")
# Scale words: after a number they make another number ("3 million" is not 3).
SCALE_WORDS = _words("thousand million billion trillion percent hundred dozen k m bn mn")
# Nouns that name the same entity as their "of" object ("the city of Paris", "the Republic of France").
SAME_AS_OF = _words("""
city town village state country nation kingdom republic province county island isle commonwealth empire principality
duchy port name title film movie book novel song album play series show game language people
""")
# Nouns that a name's gold may drop without becoming another entity ("Pacific Ocean" / "the Pacific").
DROPPABLE = _words("""
ocean sea river inc incorporated ltd limited llc corp corporation co company plc gmbh ag sa
""")
# Words that open a qualifier or an aside rather than another candidate answer.
QUALIFIER_LEADS = _words("""
which who whom whose where when while whereas because since although though as near outside beyond besides unlike
except than like located situated born known also its his her their it is was are were i we not no see probably possibly
likely perhaps maybe approximately about around roughly specifically namely formerly now then so thus therefore hence
according based per in on at by of from with for to that this these those being having e.g i.e respectively which's
""")
# Words after which a name is context for another answer ("Versailles, just outside Paris", "north of Paris").
RELATIONS = ("which", "who", "whose", "whom", "where", "when", "while", "whereas", "because", "since", "although",
             "though", "near", "outside", "beyond", "besides", "unlike", "except", "than", "like", "close to",
             "next to", "adjacent to", "north of", "south of", "east of", "west of", "part of", "instead of",
             "rather than", "home to", "bordering", "borders", "across from")
# One-word country and US-state names: a place qualifier after a name ("Paris France") is not another entity.
PLACE_QUALIFIERS = _words("""
afghanistan albania algeria argentina armenia australia austria azerbaijan bangladesh belgium bolivia brazil bulgaria
cambodia cameroon canada chile china colombia croatia cuba cyprus czechia denmark ecuador egypt england estonia
ethiopia finland france germany ghana greece hungary iceland india indonesia iran iraq ireland israel italy jamaica
japan jordan kazakhstan kenya korea latvia lebanon libya lithuania luxembourg malaysia mexico morocco nepal
netherlands nigeria norway pakistan panama peru philippines poland portugal romania russia scotland serbia
singapore slovakia slovenia spain sudan sweden switzerland syria taiwan thailand tunisia turkey uganda ukraine
uruguay venezuela vietnam wales yemen zimbabwe usa uk us alabama alaska arizona arkansas california colorado
connecticut delaware florida georgia hawaii idaho illinois indiana iowa kansas kentucky louisiana maine maryland
massachusetts michigan minnesota mississippi missouri montana nebraska nevada ohio oklahoma oregon pennsylvania
tennessee texas utah vermont virginia washington wisconsin wyoming ontario quebec bavaria
""")
