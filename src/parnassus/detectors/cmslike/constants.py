"""Detector constants of the ``cmslike`` reference simulation, each with its source.

Units: GeV, cm, rad, tesla. Source tags name the public document the number comes
from: a CMS paper (arXiv number or CMS report id), a DELPHES card
(``delphes_card_CMS.tcl``, DELPHES 3.5) or a CMSSW configuration file. ``[assume]`` marks
a modelling choice of this simulation with no direct published source. Such choices are
tuned to the validation targets listed in ``docs/cmslike.md``.
"""

from __future__ import annotations

import numpy as np

# --- magnet and surfaces -----------------------------------------------------------------

#: Solenoid field along +z (T). CMS, arXiv:1007.1988 (TRK-10-001).
B_FIELD_T = 3.8
#: Helix radius per GeV of pT: R[cm] = 100 pT / (0.29979 B).
HELIX_RADIUS_CM_PER_GEV = 100.0 / (0.299792458 * B_FIELD_T)

#: Outer radius (cm) and half length (cm) of the tracker volume. CMS detector paper JINST 3 (2008) S08004.
TRACKER_RADIUS_CM = 110.0
TRACKER_HALF_LENGTH_CM = 280.0
#: ECAL barrel front face radius and ECAL endcap front face |z| (cm). JINST 3 (2008) S08004.
ECAL_RADIUS_CM = 129.0
ECAL_ENDCAP_Z_CM = 317.0
#: HCAL barrel front face radius and HCAL endcap front face |z| (cm), approximate. JINST 3 (2008) S08004.
HCAL_RADIUS_CM = 177.0
HCAL_ENDCAP_Z_CM = 388.0
#: Calorimeter |eta| coverage used here (ECAL endcap and HCAL endcap end at 3.0; HF is not simulated).
CALO_ABS_ETA_MAX = 3.0
#: [assume] A looper that never reaches the ECAL barrel deposits in the endcap only if it gets
#: there within this many turns. Otherwise it ranges out in the tracker and deposits nothing.
LOOPER_MAX_TURNS = 1.5

# --- beam spot (Realistic7TeV2011CollisionVtxSmearingParameters, CMSSW IOMC/EventVertexGenerators) ---

BEAM_SPOT_CENTRE_CM = (0.2440, 0.3929, 0.4145)
BEAM_SPOT_SIGMA_Z_CM = 5.22
#: sqrt(emittance * beta*) / sqrt(2) with emittance 0.67e-7 cm and beta* 150 cm, at z = z0.
BEAM_SPOT_SIGMA_XY_CM = 22.4e-4
#: Mean number of pileup interactions per bunch crossing (Poisson); the project's CMS 2011 target.
MEAN_PILEUP = 6.35

# --- tracker material ----------------------------------------------------------------------

#: Tracker material t/X0 versus |eta|, approximate reading of the CMS material-budget figure
#: (arXiv:1405.6569, TRK-11-001, Fig. 2; JINST 3 (2008) S08004).
MATERIAL_ABS_ETA = np.array([0.0, 0.4, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.2, 2.5, 2.7, 3.0])
MATERIAL_X0 = np.array([0.40, 0.45, 0.60, 0.90, 1.30, 1.75, 1.70, 1.50, 1.30, 1.15, 1.00, 0.80, 0.60])

#: Radii (cm) of the material layers and their x/X0 at normal incidence, used only for the
#: radial shape of the material (the total follows MATERIAL_X0): beam pipe, 3 pixel layers,
#: 4 TIB and 6 TOB layers. CMSSW FastSimulation/TrackerSetup/python/TrackerMaterial_cfi.py.
LAYER_RADIUS_CM = np.array([3.0, 4.4, 7.3, 10.2, 25.5, 33.9, 41.9, 49.8, 60.8, 69.2, 78.0, 86.8, 96.5, 108.0])
LAYER_X0 = np.array([0.0027, 0.0222, 0.0217, 0.0217, 0.053, 0.053, 0.035, 0.040, 0.030, 0.030, 0.022, 0.022, 0.022, 0.022])

#: Photon conversion probability per X0: P = 1 - exp(-7/9 t). Standard high-energy pair-production
#: result (PDG review "Passage of particles through matter"); also DELPHES PhotonConversions.
CONVERSION_PER_X0 = 7.0 / 9.0
#: Photons and brem photons below this energy (GeV) are not converted or emitted.
#: CMSSW FastSimulation/MaterialEffects/python/MaterialEffects_cfi.py.
MATERIAL_EFFECT_E_MIN = 0.1
#: Brem photons below this fraction of the electron energy are not emitted. Same CMSSW file.
BREM_MIN_FRACTION = 0.005

#: Nuclear interactions: X0/lambda_I ratio per hadron (pi+, pi-, K+, K-, p, pbar, n, nbar, K0L).
#: CMSSW MaterialEffects_cfi ("after 170 tuning").
NUCLEAR_X0_OVER_LAMBDA = {211: 0.2257, -211: 0.2294, 321: 0.2591, -321: 0.2854, 2212: 0.3101, -2212: 0.5216,
                          2112: 0.3668, -2112: 0.4898, 130: 0.3042}
#: Inelastic fraction of pi+ versus momentum (GeV). Same CMSSW file.
NUCLEAR_INELASTIC_P = np.array([0.7, 1.0, 2.0, 3.0, 4.0, 5.0])
NUCLEAR_INELASTIC_FRACTION = np.array([0.0, 0.03, 0.53, 0.82, 0.95, 1.0])
#: [assume] Scale of the nuclear-interaction probability, tuned so that the prompt-track
#: efficiency in ttbar is 94 % for |eta| < 0.9 and 85 % for 0.9 < |eta| < 2.5 (arXiv:1405.6569).
NUCLEAR_SCALE = 0.8
#: [assume] A hadron track that interacts at a smaller radius (cm) than this is lost.
NUCLEAR_TRACK_LOSS_RADIUS_CM = 60.0

# --- tracking --------------------------------------------------------------------------------

#: Tracker acceptance |eta| < 2.5 and pT > 0.1 GeV. CMS-PAS-TRK-10-002.
TRACK_ABS_ETA_MAX = 2.5
TRACK_PT_MIN = 0.1
#: [assume] Pattern-recognition efficiency eps(pT) = A (1 - exp(-(pT - 0.1)/0.12)), reaching its
#: plateau near 0.4 GeV like the 2011 iterative tracking (lowest seeding step at 0.2 GeV).
TRACK_ALGO_PLATEAU = 0.99
TRACK_ALGO_TURN_ON_GEV = 0.12
#: Muon track efficiency above 1 GeV ("essentially 100 %", arXiv:1405.6569).
MUON_TRACK_EFFICIENCY = 0.995
#: Electron track efficiency for |eta| <= 1.5 and 1.5-2.5, pT <= 1 GeV and above. delphes_card_CMS.tcl.
ELECTRON_TRACK_EFFICIENCY = ((0.73, 0.95), (0.50, 0.83))
#: [assume] Efficiency of displaced tracks (conversion legs, V0 daughters) by production radius (cm).
DISPLACED_RADIUS_EDGES_CM = np.array([20.0, 50.0, 80.0])
DISPLACED_EFFICIENCY = np.array([0.85, 0.60, 0.30, 0.0])

#: Curvature resolution sigma(pT)/pT = a (+) b pT per |eta| bin, for hadrons and electrons.
#: DELPHES commit df5084b of delphes_card_CMS.tcl, checked against arXiv:1405.6569 and arXiv:1007.1988.
RESOLUTION_ETA_EDGES = np.array([0.5, 1.5])
TRACK_RES_A = np.array([0.010, 0.015, 0.025])
TRACK_RES_B = np.array([1.5e-4, 2.5e-4, 5.5e-4])
#: Muons (tracker + muon system): delphes_card_CMS.tcl (DELPHES 3.5).
MUON_RES_A = np.array([0.010, 0.015, 0.025])
MUON_RES_B = np.array([1.0e-4, 1.5e-4, 3.5e-4])
#: [assume] Direction resolution: sigma(phi) = 0.2 mrad (+) 1.0 mrad/pT, sigma(eta) = 0.3e-3 (+) 1.5e-3/pT.
PHI_RES = (2e-4, 1e-3)
ETA_RES = (3e-4, 1.5e-3)

#: Impact-parameter resolution sigma(d0), sigma(dz) in cm versus pT (GeV) for |eta| < 0.9,
#: 0.9-1.4 and 1.4-2.5. arXiv:1405.6569 Fig. 15, as tabulated in DELPHES cards/trackResolutionCMS.tcl.
IP_PT = np.array([0.2, 1.0, 11.0, 100.0, 135.0])
IP_ETA_EDGES = np.array([0.9, 1.4])
IP_D0_CM = np.array([[0.0354, 0.00753, 0.00191, 0.00104, 0.00110],
                     [0.0456, 0.00926, 0.00214, 0.00102, 0.00095],
                     [0.0697, 0.0156, 0.00256, 0.00130, 0.00137]])
IP_DZ_CM = np.array([[0.0369, 0.0111, 0.00382, 0.00283, 0.00318],
                     [0.0706, 0.0198, 0.00511, 0.00343, 0.00310],
                     [0.217, 0.0670, 0.0112, 0.0082, 0.0085]])

# --- decays ----------------------------------------------------------------------------------

#: Masses (GeV) and c*tau (cm). PDG Review of Particle Physics 2024.
MASS = {11: 0.000511, 13: 0.10566, 22: 0.0, 111: 0.13498, 211: 0.13957, 321: 0.49368, 130: 0.49761,
        310: 0.49761, 2212: 0.93827, 2112: 0.93957, 3122: 1.11568, 3222: 1.18937, 3112: 1.19745,
        3322: 1.31486, 3312: 1.32171, 3334: 1.67245}
CTAU_CM = {211: 780.45, 321: 371.2, 310: 2.6844, 3122: 7.89, 3222: 2.404, 3112: 4.434, 3322: 8.71,
           3312: 4.91, 3334: 2.461}
#: Two-body decays of the long-lived neutral kaon and hyperons that the generator leaves stable
#: (c tau > 10 mm): parent -> [(branching fraction, daughter 1, daughter 2)], the fractions
#: renormalised to the listed modes. Antiparticles decay to the charge-conjugate modes. PDG 2024.
DECAYS = {
    310: [(0.692, 211, -211), (0.307, 111, 111)],
    3122: [(0.639, 2212, -211), (0.358, 2112, 111)],
    3222: [(0.5157, 2212, 111), (0.4831, 2112, 211)],
    3112: [(0.99848, 2112, -211)],
    3322: [(0.9952, 3122, 111)],
    3312: [(0.99887, 3122, -211)],
    3334: [(0.678, 3122, -321), (0.236, 3322, -211), (0.086, 3312, 111)],
}
#: Particles that are their own antiparticle (their PDG id keeps its sign under conjugation).
SELF_CONJUGATE = (22, 111, 130, 310)
#: K+ -> mu+ nu branching fraction (0.636); other kaon decays are not simulated. PDG 2024.
BR_K0S_PIPI = DECAYS[310][0][0]
BR_K_MUNU = 0.636
#: [assume] A pion or kaon decaying at a transverse radius below this (cm) gives a muon track.
#: Beyond it, the hadron track is kept with twice its pT resolution.
DECAY_TRACK_RADIUS_CM = 30.0
#: [assume] ID probability of a decay-in-flight muon with p > 3 GeV and |eta| < 2.4.
DECAY_MUON_ID = 0.3

# --- calorimeters ----------------------------------------------------------------------------

#: ECAL barrel: 170 x 360 crystals of 0.0174 x 2pi/360 up to |eta| = 1.479. JINST 3 (2008) S08004.
ECAL_BARREL_ABS_ETA = 1.479
ECAL_CRYSTAL_DETA = 0.0174
ECAL_N_PHI = 360
#: EB-EE gap 1.4442 < |eta| < 1.566 (CMS photon selections, arXiv:1306.2016); [assume] response 0.9 there.
ECAL_GAP = (1.4442, 1.566)
ECAL_GAP_RESPONSE = 0.9
#: Molière radius of PbWO4 (cm). CMSSW FastSimulation/Calorimetry/python/Calorimetry_cff.py.
MOLIERE_RADIUS_CM = 2.19
#: [assume] EM lateral profile: a core Gaussian (90 %, sigma 0.4 cm) and a tail Gaussian (10 %,
#: sigma 3 cm). They put about 80 % of the energy in the central crystal and 94 % in 3 x 3,
#: the containment quoted in JINST 3 (2008) S08004.
EM_CORE_FRACTION = 0.9
EM_CORE_SIGMA_CM = 0.4
EM_TAIL_SIGMA_CM = 3.0
#: ECAL resolution sigma/E = S/sqrt(E) (+) C, barrel and endcap. S = 2.8 % from test beam
#: (JINST 2 (2007) P04004); [assume] C = 0.5 % / 1.5 % and S = 5 % in the endcap, matching the
#: 2011 in-situ Z -> ee performance (arXiv:1306.2016).
ECAL_STOCHASTIC = (0.028, 0.05)
ECAL_CONSTANT = (0.005, 0.015)
#: Electronic noise per crystal (GeV), barrel and endcap. arXiv:1306.2016 (approximate).
ECAL_NOISE_GEV = (0.04, 0.15)
#: PF rechit and seed thresholds (GeV): barrel 0.08 / 0.23, endcap 0.30 / 0.60.
#: CMSSW RecoParticleFlow/PFClusterProducer/python/particleFlowClusterECAL_cfi.py (legacy).
ECAL_CELL_THRESHOLD = (0.08, 0.30)
ECAL_SEED_THRESHOLD = (0.23, 0.60)

#: HCAL towers: 0.087 in eta and 5 degrees in phi up to |eta| = 1.740, then the eta edges below
#: with 10-degree towers. LPC tower table; JINST 3 (2008) S08004.
HCAL_ETA_EDGES_POSITIVE = np.concatenate([np.arange(21) * 0.087, [1.830, 1.930, 2.043, 2.172, 2.322, 2.500, 2.650, 3.000]])
HCAL_N_PHI = 72
HCAL_FINE_PHI_ABS_ETA = 1.740
#: HCAL noise per tower (GeV, approximate) and PF cell / seed thresholds (GeV) in HB and HE.
#: CMSSW particleFlowClusterHCAL_cfi.py (legacy).
HCAL_NOISE_GEV = 0.25
HCAL_CELL_THRESHOLD = 0.8
HCAL_SEED_THRESHOLD = (0.8, 1.1)
HCAL_BARREL_ABS_ETA = 1.392
#: Lateral hadron shower width at the HCAL (cm): PF showerSigma (particleFlowClusterHCAL_cfi.py);
#: [assume] 2.5 cm for the part of a hadron shower that starts in the ECAL.
HCAL_SHOWER_SIGMA_CM = 10.0
ECAL_HADRON_SIGMA_CM = 2.5

#: Raw pion response (ECAL + HCAL): mean and sigma (GeV) of the visible energy versus E (GeV).
#: CMSSW FastSimulation/Calorimetry/python/HcalResponse_cfi.py, first barrel eta bin.
HADRON_RESPONSE_E = np.array([1, 2, 3, 5, 9, 15, 20, 30, 50, 100, 150, 300, 1000], dtype=float)
HADRON_RESPONSE_MEAN = np.array([0.50, 1.58, 2.13, 3.80, 7.33, 12.4, 17.3, 26.7, 45.3, 91.9, 138, 280, 930])
HADRON_RESPONSE_SIGMA = np.array([0.65, 1.05, 1.43, 1.82, 2.53, 3.15, 3.66, 4.48, 6.21, 9.47, 12.4, 20.5, 77])
#: [assume] Neutral hadrons (n, K0L) have 5 % lower response than pions.
NEUTRAL_HADRON_RESPONSE = 0.95
#: A hadron starts showering in the ECAL with probability 1 - exp(-23 cm / 22 cm) (crystal length
#: 23 cm, JINST 3 (2008) S08004; nuclear interaction length of PbWO4 about 20-22 cm, PDG).
ECAL_SHOWER_START_PROBABILITY = 1.0 - np.exp(-23.0 / 22.0)
#: [assume] Fraction of the visible energy of a hadron showering in the ECAL that stays there: Beta(2, 3).
ECAL_HADRON_FRACTION_BETA = (2.0, 3.0)
#: Most probable MIP energy (GeV) of a muon or non-showering hadron in the ECAL (23 cm of PbWO4 at
#: dE/dx 1.25 MeV cm2/g, density 8.28 g/cm3) and [assume] of a muon in the HCAL.
ECAL_MIP_GEV = 0.28
HCAL_MIP_GEV = 2.0

# --- particle flow -------------------------------------------------------------------------

#: [assume] Neutral excess threshold: sigma_calo = 1.0 sqrt(E) (+) 0.05 E, jets 100 %/sqrt(E) (+) 5 %
#: (CMS detector description of the 2010 papers), and at least 0.5 GeV.
PF_CALO_STOCHASTIC = 1.0
PF_CALO_CONSTANT = 0.05
PF_EXCESS_MIN_GEV = 0.5
#: [assume] Minimum energy (GeV) of a neutral hadron made from an excess.
PF_NEUTRAL_HADRON_MIN_GEV = 1.0
#: [assume] Minimum raw energy (GeV) of an HCAL cluster with no track to become a neutral hadron.
#: Without it, single noise towers (sigma 0.25 GeV, seed 0.8 GeV) would become neutral hadrons
#: about once per event, because the low-energy calibration factor is large.
PF_NEUTRAL_HADRON_RAW_MIN_GEV = 1.0
#: Muon reach and ID (arXiv:1206.4071, MUO-10-004; [assume] values inside the published ranges):
#: p > 3 GeV (barrel) or p > 2 GeV (|eta| > 1), |eta| < 2.4; ID 0.97 above pT 5 GeV, 0.8 below.
MUON_ABS_ETA_MAX = 2.4
MUON_ID_EFFICIENCY = (0.80, 0.97)
#: Hadron punch-through to the muon system for 3-10 GeV hadrons: 5.3e-4 (CMS-PAS-MUO-10-002).
PUNCH_THROUGH_PROBABILITY = 5.3e-4
#: [assume] Electron ID efficiency: (barrel, endcap) for 2-10 GeV and above 10 GeV; 0 below 2 GeV.
ELECTRON_ID_EFFICIENCY = ((0.60, 0.50), (0.90, 0.80))
#: [assume] Share of tracked conversion legs that the conversion finder pairs up and gives back to
#: the photon (the legs' tracks are then not used; PF rebuilds the photon from the ECAL).
CONVERSION_RECOVERY = 0.7
#: [assume] A tracked conversion leg is identified as an electron with this probability.
CONVERSION_LEG_ELECTRON_ID = 0.1
#: [assume] Share of electrons whose bremsstrahlung photons the ECAL supercluster collects
#: (the photons then do not appear as separate PF photons either).
BREM_RECOVERY = 0.75
#: [assume] A charged pion above 2 GeV with more than 80 % of its energy in the ECAL fakes an electron.
HADRON_ELECTRON_FAKE = 5e-3
