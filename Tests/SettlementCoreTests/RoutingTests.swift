import SettlementCore
import SettlementModel
import Testing

@Suite struct RoutingTests {
    let routing = Minimal.routing

    @Test func routeClassesFollowTheLowestCommonAncestor() {
        #expect(routing.routeClass(treatment: code("370211"), insured: code("370211")) == .local)
        #expect(routing.routeClass(treatment: code("370211"), insured: code("370202")) == .intraCity)
        #expect(routing.routeClass(treatment: code("370211"), insured: code("370102")) == .intraProvince)
        #expect(routing.routeClass(treatment: code("370211"), insured: code("410102")) == .crossProvince)
    }

    @Test func crossProvincePathGoesUpToNationalAndDownToTheInsuredCounty() {
        #expect(routing.path(from: code("370211"), to: code("410102")).map(\.value)
                == ["370211", "370200", "370000", "000000", "410000", "410100", "410102"])
        #expect(routing.path(from: code("370211"), to: code("370211")).map(\.value) == ["370211"])
        #expect(routing.path(from: code("370211"), to: code("370202")).map(\.value) == ["370211", "370200", "370202"])
    }

    @Test func nextHopFromEveryNodeOnThePathLeadsToTheDestination() {
        for (source, _, _) in Minimal.parents where routing.tier(of: code(source)) == .county {
            for (destination, _, _) in Minimal.parents where routing.tier(of: code(destination)) == .county {
                var at = code(source)
                var hops = 0
                while true {
                    let hop = try! #require(routing.nextHop(from: at, to: code(destination)))
                    if hop == .here { break }
                    switch hop {
                    case .parent: at = routing.parent(of: at)!
                    case .child(let child):
                        #expect(routing.parent(of: child) == at)
                        at = child
                    case .here: break
                    }
                    hops += 1
                    #expect(hops <= 6, "route \(source) -> \(destination) loops")
                    if hops > 6 { return }
                }
                #expect(at.value == destination)
                #expect(hops == routing.path(from: code(source), to: code(destination)).count - 1)
            }
        }
    }

    @Test func unknownNodesHaveNoRoute() {
        #expect(routing.nextHop(from: code("370211"), to: code("999999")) == nil)
        #expect(routing.routeClass(treatment: code("370211"), insured: code("999999")) == nil)
    }
}
